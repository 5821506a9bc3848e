from services.catalog.contents.schemas import (
    ContentIn,
    ContentOut,
    ContentProductIn,
    ContentProductOut,
)
from services.catalog.core.crud import EntitySpec, references
from services.catalog.core.routes import Operation, Parent, Wording, entity_router
from services.catalog.models import Account, Content, ContentProduct, Product

CONTENTS = EntitySpec("content", Content, ContentOut, references=references(account_id=Account))
CONTENT_PRODUCTS = EntitySpec(
    "content_product",
    ContentProduct,
    ContentProductOut,
    key_fields=("content_id", "product_id"),
    references=references(content_id=Content, product_id=Product),
    name="content–product link",
)

router = entity_router(CONTENTS, plural="contents", body_schema=ContentIn)
links = entity_router(
    CONTENT_PRODUCTS,
    plural="products",
    body_schema=ContentProductIn,
    parent=Parent(CONTENTS, "contents"),
    wording=Wording(
        put=Operation("put_content_product", "Link a product to a content (create or replace)"),
        list=Operation("list_content_products", "List a content's products"),
        get=Operation("get_content_product", "Read one link"),
        delete=Operation("delete_content_product", "Unlink"),
    ),
)

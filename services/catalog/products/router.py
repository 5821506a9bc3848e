from services.catalog.core.crud import EntitySpec
from services.catalog.core.routes import entity_router
from services.catalog.models import Product
from services.catalog.products.schemas import ProductIn, ProductOut

PRODUCTS = EntitySpec("product", Product, ProductOut)

router = entity_router(PRODUCTS, plural="products", body_schema=ProductIn)

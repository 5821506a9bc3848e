from services.catalog.accounts.schemas import AccountIn, AccountOut
from services.catalog.core.crud import EntitySpec
from services.catalog.core.routes import entity_router
from services.catalog.models import Account

ACCOUNTS = EntitySpec("account", Account, AccountOut)

router = entity_router(ACCOUNTS, plural="accounts", body_schema=AccountIn)

from services.catalog.campaigns.schemas import CampaignIn, CampaignOut
from services.catalog.core.crud import EntitySpec
from services.catalog.core.routes import entity_router
from services.catalog.models import Campaign

CAMPAIGNS = EntitySpec("campaign", Campaign, CampaignOut)

router = entity_router(CAMPAIGNS, plural="campaigns", body_schema=CampaignIn, tag="campaigns")

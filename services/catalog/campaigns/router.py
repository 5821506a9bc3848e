from services.catalog.campaigns.schemas import CampaignIn, CampaignOut
from services.catalog.core.crud import EntitySpec
from services.catalog.core.routes import entity_router
from services.catalog.models import Campaign

CAMPAIGNS = EntitySpec(entity="campaign", label="campaign", model=Campaign, out_schema=CampaignOut)

router = entity_router(CAMPAIGNS, plural="campaigns", body_schema=CampaignIn, tag="campaigns")

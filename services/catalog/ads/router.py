import datetime as dt
from typing import Annotated

from fastapi import Path

from services.catalog.ads.schemas import AdIn, AdOut, AdSpendIn, AdSpendOut
from services.catalog.core.crud import EntitySpec, references
from services.catalog.core.routes import Operation, Parent, Wording, entity_router
from services.catalog.models import Ad, AdSpend, Campaign, Content, Product

ADS = EntitySpec(
    "ad",
    Ad,
    AdOut,
    references=references(campaign_id=Campaign, content_id=Content, product_id=Product),
)
AD_SPEND = EntitySpec(
    "ad_spend", AdSpend, AdSpendOut, key_fields=("ad_id", "day"), references=references(ad_id=Ad)
)

DayPath = Annotated[
    dt.date, Path(alias="day", description="The day, YYYY-MM-DD, in the tenant's timezone")
]

router = entity_router(ADS, plural="ads", body_schema=AdIn)
spend = entity_router(
    AD_SPEND,
    plural="spend",
    body_schema=AdSpendIn,
    parent=Parent(ADS, "ads", item=DayPath),
    wording=Wording(
        put=Operation("put_ad_spend", "Set an ad's spend for one day (create or replace)"),
        list=Operation("list_ad_spend", "List an ad's daily spend"),
        get=Operation("get_ad_spend", "Read one day's spend"),
        delete=Operation("delete_ad_spend", "Remove one day's spend"),
    ),
)

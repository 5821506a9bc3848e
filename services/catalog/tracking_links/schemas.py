from __future__ import annotations

from pydantic import Field, computed_field

from services.catalog.core.schemas import Stamped, Url
from shared.schemas import ClientId, Schema


class TrackingLinkIn(Schema):
    content_id: ClientId
    product_id: ClientId | None = None
    ad_id: ClientId | None = None
    destination_url: Url = Field(description="Where the viewer lands (the shop's product page)")


class TrackingLinkOut(Stamped):
    id: str = Field(description="The link's code")
    url: str = Field(description="The URL to share: `{ATTRIBUTION_PUBLIC_URL}/r/{code}`")
    content_id: str
    product_id: str | None
    ad_id: str | None
    destination_url: str

    # Pydantic documents @computed_field over @property; mypy does not accept the stacking.
    @computed_field  # type: ignore[prop-decorator]
    @property
    def code(self) -> str:
        return self.id

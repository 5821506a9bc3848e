from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from services.catalog.models.base import Base, ClientKeyed
from shared.db import MoneyType, UTCDateTime


class Campaign(ClientKeyed, Base):
    __tablename__ = "campaigns"

    name: Mapped[str] = mapped_column(String(256))
    objective: Mapped[str | None] = mapped_column(String(64))
    # qa, lucky_draw, topic or challenge: only with objective "engagement".
    activity: Mapped[str | None] = mapped_column(String(16))
    starts_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    ends_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    budget: Mapped[Decimal | None] = mapped_column(MoneyType())
    currency: Mapped[str | None] = mapped_column(String(3))

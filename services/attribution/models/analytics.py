"""What replication to the analytic store keeps in the system of record."""

from __future__ import annotations

from sqlalchemy import BigInteger, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from services.attribution.models.base import Base


class AnalyticsOrderChange(Base):
    """An order inserted or updated since replication last copied it (an outbox row).

    Filled by database triggers on ``orders`` (revision 0012), never by the service's code;
    the order replicator reads a batch, copies those orders' current state to the analytic
    store and deletes exactly the rows it read. Keyed by ``change_id`` alone: one
    cross-tenant log.
    """

    __tablename__ = "analytics_order_changes"

    change_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    tenant_id: Mapped[str] = mapped_column(String(128))
    order_id: Mapped[str] = mapped_column(String(128))

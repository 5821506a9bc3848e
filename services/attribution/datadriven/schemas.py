"""Wire formats of the data-driven attribution report."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from services.attribution.datadriven.repository import ChannelDimension
from shared.schemas import MoneyOut

Method = Literal["markov", "shapley"]


class ChannelCredit(BaseModel):
    channel: str
    removal_effect: float | None = Field(
        None, description="Markov only: 1 − P(conversion without the channel) / P(conversion)"
    )
    conversions: float = Field(description="The channel's share of the conversions")
    revenue: MoneyOut


class PathFrequency(BaseModel):
    path: str = Field(description='Channels in time order, e.g. "v1 > v2"')
    conversions: int
    non_conversions: int


class DataDrivenOut(BaseModel):
    method: Method
    channel: ChannelDimension
    order: int
    currency: str | None
    converting_paths: int
    non_converting_paths: int
    p_conversion: float
    channels: list[ChannelCredit]
    top_paths: list[PathFrequency]

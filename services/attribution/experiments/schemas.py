"""Wire formats of experiments and their results."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints, model_validator

from shared.schemas import ClientId, OutSchema, Schema, UTCDatetime, UTCDatetimeOut

Metric = Literal["click_rate", "order_rate", "completion_rate", "engagement_rate", "gmv_per_viewer"]
VariantKey = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._:-]{1,64}$")]

METRIC_DOC = (
    "`click_rate`: viewers who clicked a variant content / viewers exposed; `order_rate`: "
    "viewers who became buyers of a paid order credited (last touch) to the variant's contents "
    "/ viewers exposed; `completion_rate`: viewers who completed a view / exposed; "
    "`engagement_rate`: viewers who liked, commented or shared / exposed; `gmv_per_viewer`: "
    "last-touch credited GMV of the variant's contents / viewers exposed."
)


class Variant(Schema):
    key: VariantKey
    content_ids: list[ClientId] = Field(min_length=1, max_length=100)


class ExperimentIn(Schema):
    name: str = Field(min_length=1, max_length=256)
    hypothesis: str | None = Field(default=None, max_length=4096)
    variants: list[Variant] = Field(
        min_length=2, max_length=8, description="2-8 variants; the first is the control"
    )
    metric: Metric = Field(description=METRIC_DOC)
    starts_at: UTCDatetime
    ends_at: UTCDatetime | None = None

    @model_validator(mode="after")
    def _consistent(self) -> ExperimentIn:
        keys = [v.key for v in self.variants]
        if len(set(keys)) != len(keys):
            raise ValueError("variant keys must be distinct")
        seen: set[str] = set()
        for variant in self.variants:
            shared_ids = seen.intersection(variant.content_ids)
            if shared_ids:
                raise ValueError(
                    f"content {sorted(shared_ids)[0]!r} is in two variants; each content "
                    "belongs to one variant"
                )
            seen.update(variant.content_ids)
        if self.ends_at is not None and self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self


class VariantOut(OutSchema):
    key: str
    content_ids: list[str]


class ExperimentOut(OutSchema):
    id: str
    experiment_id: str
    name: str
    hypothesis: str | None
    variants: list[VariantOut]
    metric: Metric
    starts_at: UTCDatetimeOut
    ends_at: UTCDatetimeOut | None
    created_at: UTCDatetimeOut
    updated_at: UTCDatetimeOut


class ExperimentList(OutSchema):
    experiments: list[ExperimentOut] = Field(
        description="The tenant's experiments, the latest start first (at most 200)"
    )


class VsControl(OutSchema):
    relative_lift: float | None = Field(description="(B − A) / |A| of the variant's mean")
    ci95: tuple[float, float] | None = Field(
        description="95 % interval of the relative lift: lift ± t(0.975, df) · se, se by the "
        "delta method: √(σ²_B/(n_B·μ_A²) + σ²_A·μ_B²/(n_A·μ_A⁴)); df by Welch–Satterthwaite"
    )
    p_value: float | None = Field(description="Two-sided Welch t-test of lift / se")
    chance_to_win: float | None = Field(description="Φ(lift / se), flat prior")
    absolute_diff: float | None = Field(description="μ_B − μ_A")
    absolute_ci95: tuple[float, float] | None = Field(
        description="μ_B − μ_A ± t(0.975, df) · √(σ²_A/n_A + σ²_B/n_B)"
    )
    viewers_needed: int | None = Field(
        description="More viewers per variant needed for 80 % power at 5 % for the observed "
        "difference: (z₀.₉₇₅ + z₀.₈)² (σ²_A + σ²_B) / Δ² minus those seen"
    )


class VariantResult(OutSchema):
    key: str
    units: int = Field(description="Viewers exposed to this variant only")
    conversions: int | None = Field(description="Viewers who converted (rate metrics)")
    sum: str | None = Field(description="Credited GMV, a decimal string (gmv_per_viewer)")
    rate: float | None = Field(description="conversions / units (rate metrics)")
    mean: float | None = Field(description="sum / units (gmv_per_viewer)")
    vs_control: VsControl | None = Field(description="null for the control")


class Srm(OutSchema):
    p_value: float | None = Field(
        description="Chi-square goodness of fit of units against an equal split"
    )
    mismatch: bool = Field(description="p_value < 0.001")


class ExperimentResults(OutSchema):
    experiment_id: str
    metric: Metric
    currency: str | None
    variants: list[VariantResult]
    mixed_exposure: int = Field(description="Viewers exposed to more than one variant, left out")
    srm: Srm
    warnings: list[str]

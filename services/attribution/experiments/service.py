"""Experiments: stored by id; results computed from events and last-touch credits."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from services.attribution.experiments import repository, stats
from services.attribution.experiments.schemas import (
    ExperimentIn,
    ExperimentList,
    ExperimentOut,
    ExperimentResults,
    Srm,
    VariantResult,
    VsControl,
)
from services.attribution.models import Experiment
from shared.db import assign, utcnow
from shared.errors import found
from shared.schemas import from_row, money_to_str

LIST_LIMIT = 200

TINY_SAMPLE = 100


def to_out(row: Experiment) -> ExperimentOut:
    return from_row(ExperimentOut, row, id=row.experiment_id)


async def put_experiment(
    session: AsyncSession, tenant_id: str, experiment_id: str, body: ExperimentIn
) -> tuple[bool, ExperimentOut]:
    """Create or replace; True when created. An identical PUT changes nothing."""
    fields = body.model_dump()
    existing = await repository.get(session, tenant_id, experiment_id)
    now = utcnow()
    if existing is None:
        row = Experiment(
            tenant_id=tenant_id,
            experiment_id=experiment_id,
            created_at=now,
            updated_at=now,
            **fields,
        )
        await repository.add(session, row)
        return True, to_out(row)
    if assign(existing, fields):
        existing.updated_at = now
        await session.flush()
    return False, to_out(existing)


async def list_experiments(session: AsyncSession, tenant_id: str) -> ExperimentList:
    rows = await repository.latest(session, tenant_id, LIST_LIMIT)
    return ExperimentList(experiments=[to_out(row) for row in rows])


async def get_experiment(session: AsyncSession, tenant_id: str, experiment_id: str) -> Experiment:
    return found(
        await repository.get(session, tenant_id, experiment_id),
        f"No experiment {experiment_id!r} for this tenant; create it with "
        f"PUT /v1/experiments/{experiment_id}.",
    )


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 10)


async def results(
    session: AsyncSession,
    tenant_id: str,
    experiment_id: str,
    currency: str | None,
    now: dt.datetime | None = None,
) -> ExperimentResults:
    row = await get_experiment(session, tenant_id, experiment_id)
    start = row.starts_at
    end = row.ends_at or (now or utcnow())
    variant_of = {c: v["key"] for v in row.variants for c in v["content_ids"]}
    keys = [v["key"] for v in row.variants]
    exposures: dict[str, set[str]] = defaultdict(set)
    for user, content in await repository.user_contents(
        session, tenant_id, repository.EXPOSURE_TYPES, variant_of, start, end
    ):
        exposures[user].add(variant_of[content])
    assigned = {user: next(iter(vs)) for user, vs in exposures.items() if len(vs) == 1}
    mixed = sum(1 for vs in exposures.values() if len(vs) > 1)
    units = dict.fromkeys(keys, 0)
    for key in assigned.values():
        units[key] += 1

    gmv = row.metric == "gmv_per_viewer"
    converted: dict[str, set[str]] = {key: set() for key in keys}
    value_of: dict[str, Decimal] = defaultdict(Decimal)
    if row.metric in repository.CONVERSION_TYPES:
        for user, content in await repository.user_contents(
            session, tenant_id, repository.CONVERSION_TYPES[row.metric], variant_of, start, end
        ):
            key = variant_of[content]
            if assigned.get(user) == key:
                converted[key].add(user)
    else:
        for buyer, content, amount, _currency in await repository.buyer_credits(
            session, tenant_id, variant_of, start, end
        ):
            key = variant_of[content]
            if assigned.get(buyer) == key:
                converted[key].add(buyer)
                value_of[buyer] += amount

    arms: dict[str, stats.Arm] = {}
    sums: dict[str, Decimal] = {}
    for key in keys:
        if gmv:
            values = [value_of[u] for u in converted[key]]
            sums[key] = sum(values, Decimal(0))
            arms[key] = stats.mean_arm(
                units[key], float(sums[key]), sum(float(v) ** 2 for v in values)
            )
        else:
            arms[key] = stats.proportion_arm(units[key], len(converted[key]))

    control = arms[keys[0]]
    out: list[VariantResult] = []
    warnings: list[str] = []
    for index, key in enumerate(keys):
        arm = arms[key]
        vs: VsControl | None = None
        if index > 0:
            c = stats.compare(control, arm)
            vs = VsControl(
                relative_lift=_round(c.relative_lift),
                ci95=None if c.ci95 is None else (c.ci95[0], c.ci95[1]),
                p_value=_round(c.p_value),
                chance_to_win=_round(c.chance_to_win),
                absolute_diff=_round(c.absolute_diff),
                absolute_ci95=c.absolute_ci95,
                viewers_needed=c.viewers_needed,
            )
        out.append(
            VariantResult(
                key=key,
                units=units[key],
                conversions=None if gmv else len(converted[key]),
                sum=money_to_str(sums[key]) if gmv else None,
                rate=None if gmv or not units[key] else len(converted[key]) / units[key],
                mean=(float(sums[key]) / units[key]) if gmv and units[key] else None,
                vs_control=vs,
            )
        )
        if units[key] < TINY_SAMPLE:
            warnings.append(
                f"Variant {key!r} has {units[key]} viewers (fewer than {TINY_SAMPLE}): "
                "the comparison is not reliable yet."
            )
    srm_p = stats.srm_p_value([units[k] for k in keys])
    mismatch = srm_p is not None and srm_p < stats.SRM_THRESHOLD
    if mixed:
        warnings.append(
            f"{mixed} viewers saw more than one variant and are left out; keep variants "
            "apart (different audiences or placements)."
        )
    if mismatch:
        warnings.append(
            f"Sample ratio mismatch (p = {srm_p:.2g}): the variants' viewers are not split "
            "evenly as planned; check distribution before trusting the result."
        )
    return ExperimentResults(
        experiment_id=row.experiment_id,
        metric=row.metric,
        currency=currency if gmv else None,
        variants=out,
        mixed_exposure=mixed,
        srm=Srm(p_value=srm_p, mismatch=mismatch),
        warnings=warnings,
    )


def csv_rows(answer: ExperimentResults) -> list[dict[str, object]]:
    """One flat row per variant (the control's comparison columns are empty)."""
    rows: list[dict[str, object]] = []
    for variant in answer.variants:
        vs = variant.vs_control
        ci = vs.ci95 if vs and vs.ci95 else (None, None)
        abs_ci = vs.absolute_ci95 if vs and vs.absolute_ci95 else (None, None)
        rows.append(
            {
                "key": variant.key,
                "units": variant.units,
                "conversions": variant.conversions,
                "sum": variant.sum,
                "rate": variant.rate,
                "mean": variant.mean,
                "relative_lift": vs.relative_lift if vs else None,
                "ci95_low": ci[0],
                "ci95_high": ci[1],
                "p_value": vs.p_value if vs else None,
                "chance_to_win": vs.chance_to_win if vs else None,
                "absolute_diff": vs.absolute_diff if vs else None,
                "absolute_ci95_low": abs_ci[0],
                "absolute_ci95_high": abs_ci[1],
                "viewers_needed": vs.viewers_needed if vs else None,
            }
        )
    return rows

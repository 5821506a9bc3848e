"""PUT /v1/experiments/{id} and its results, JSON or CSV."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from services.attribution.experiments import service
from services.attribution.experiments.schemas import (
    METRIC_DOC,
    ExperimentIn,
    ExperimentList,
    ExperimentOut,
    ExperimentResults,
)
from services.attribution.settings.deps import ReportRules
from shared.app import IdPath, ReadSessionDep, SessionDep
from shared.auth import Admin, ReportsReader
from shared.csv_export import CSV_OR_JSON, ExportFormat, export_response

router = APIRouter(prefix="/v1/experiments", tags=["experiments"])
CSV_COLUMNS = (
    "key",
    "units",
    "conversions",
    "sum",
    "rate",
    "mean",
    "relative_lift",
    "ci95_low",
    "ci95_high",
    "p_value",
    "chance_to_win",
    "absolute_diff",
    "absolute_ci95_low",
    "absolute_ci95_high",
    "viewers_needed",
)


@router.get(
    "",
    response_model=ExperimentList,
    summary="The tenant's experiments, the latest start first",
    description="At most 200, each as `PUT /v1/experiments/{experiment_id}` answers it.",
)
async def list_experiments(principal: ReportsReader, session: ReadSessionDep) -> ExperimentList:
    return await service.list_experiments(session, principal.tenant_id)


@router.put(
    "/{experiment_id}",
    response_model=ExperimentOut,
    summary="Create (201) or replace (200) an experiment on content variants",
    description="2–8 variants of content, the first the control, compared on one metric. "
    + METRIC_DOC
    + " A viewer is exposed by an impression or view of a variant's content between "
    "`starts_at` and `ends_at` (now while open); one exposed to two variants is left out.",
    responses={201: {"description": "Created", "model": ExperimentOut}},
)
async def put_experiment(
    experiment_id: IdPath,
    body: ExperimentIn,
    principal: Admin,
    session: SessionDep,
    response: Response,
) -> ExperimentOut:
    created, out = await service.put_experiment(session, principal.tenant_id, experiment_id, body)
    await session.commit()
    response.status_code = 201 if created else 200
    return out


@router.get(
    "/{experiment_id}/results",
    response_model=ExperimentResults,
    summary="Each variant against the control: lift, 95 % interval, p-value, chance to win",
    description="Per-viewer values (0/1 for a rate, credited GMV for `gmv_per_viewer`) "
    "compared by Welch's t-test: a proportion's variance is p(1−p), a mean's the sample "
    "variance. Relative lift (μ_B − μ_A)/|μ_A| with the delta-method variance "
    "σ²_B/(n_B μ_A²) + σ²_A μ_B²/(n_A μ_A⁴); Welch–Satterthwaite degrees of freedom "
    "(σ²_A/n_A + σ²_B/n_B)² / ((σ²_A/n_A)²/(n_A−1) + (σ²_B/n_B)²/(n_B−1)); interval "
    "lift ± t(0.975, df)·se; two-sided p from the t distribution; chance to win Φ(lift/se). "
    "Sample-ratio mismatch: chi-square of units against an equal split, flagged when "
    "p < 0.001. `viewers_needed`: more viewers per variant for 80 % power at the observed "
    "difference. CSV gives one row per variant.",
    responses={
        200: CSV_OR_JSON,
        404: {"description": "No such experiment"},
        422: {"description": "Bad query"},
    },
)
async def experiment_results(
    experiment_id: IdPath,
    rules: ReportRules,
    principal: ReportsReader,
    session: ReadSessionDep,
    format: Annotated[ExportFormat, Query()] = "json",
) -> Response:
    answer = await service.results(session, principal.tenant_id, experiment_id, rules.currency)
    rows = service.csv_rows(answer)
    filename = f"experiment-{experiment_id}.csv"
    return export_response(format, answer, CSV_COLUMNS, rows, filename=filename)

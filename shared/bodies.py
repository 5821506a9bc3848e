"""Parsing request bodies read as raw bytes (for signatures), with clear errors.

Their size is bounded before they get here, by the body limit middleware (``shared.limits``).
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from shared.errors import BadRequest, UnprocessableEntity

M = TypeVar("M", bound=BaseModel)


def pydantic_errors(
    exc: ValidationError, prefix: tuple[Any, ...] = ("body",)
) -> list[dict[str, Any]]:
    errors = []
    for err in exc.errors(include_url=False):
        loc = [*prefix, *err.get("loc", ())]
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        if err.get("type") == "extra_forbidden":
            msg = "unknown field (not allowed)"
        errors.append({"loc": loc, "field": ".".join(str(p) for p in loc[1:]), "msg": msg})
    return errors


def parse_model(model: type[M], raw: bytes) -> M:
    """Validate a JSON body: malformed JSON is 400, invalid fields 422 naming each field."""
    if not raw.strip():
        raise BadRequest("The request body is empty; send a JSON object.")
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        if any(e.get("type") == "json_invalid" for e in exc.errors()):
            raise BadRequest(
                "The request body is not valid JSON.",
                errors=[{"loc": ["body"], "msg": "malformed JSON"}],
            ) from None
        errors = pydantic_errors(exc)
        fields = ", ".join(sorted({e["field"] or "body" for e in errors}))
        raise UnprocessableEntity(
            f"The request has {len(errors)} invalid field(s): {fields}. See errors for each.",
            errors=errors,
        ) from None

"""``POST /api/v2/query``: Plausible's Stats API v2 over the analytics engine."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable

from fastapi import APIRouter, Header, Request
from fastapi.concurrency import run_in_threadpool

from serving.analytics.engine import Analytics
from serving.analytics.query import (
    COMPARISONS,
    DATE_RANGES,
    MAX_DIMENSIONS,
    MAX_FILTERS,
    MAX_LIMIT,
    MAX_VALUE_CHARS,
    MAX_VALUES,
    METRICS,
    OPERATORS,
    TIME_DIMENSIONS,
    parse_v2,
)
from serving.openapi import PROPERTY_SCHEMA
from serving.query import QueryError

MAX_BODY_BYTES = 64 * 1024

EXAMPLE = {
    "site_id": "example.com",
    "metrics": ["visitors", "pageviews", "bounce_rate"],
    "date_range": "30d",
    "dimensions": ["visit:source"],
    "filters": [["is", "visit:browser", ["Chrome"]], ["contains", "event:page", ["/blog"]]],
    "order_by": [["visitors", "desc"]],
    "pagination": {"limit": 10},
}


FILTER_REF = {"$ref": "#/components/schemas/V2Filter"}


def filter_schema() -> dict:
    """A v2 filter (components.schemas.V2Filter, recursive): a condition, and/or of filters, not."""
    prop = PROPERTY_SCHEMA
    values = {
        "type": "array",
        "items": {"type": "string", "maxLength": MAX_VALUE_CHARS},  # matches: MAX_PATTERN_CHARS
        "minItems": 1,
        "maxItems": MAX_VALUES,
    }
    return {
        "anyOf": [
            {
                "type": "array",
                "prefixItems": [{"enum": list(OPERATORS)}, prop, values],
                # Plausible's modifiers; matching is case-sensitive (RE2's (?i) makes it not)
                "items": {
                    "type": "object",
                    "properties": {"case_sensitive": {"const": True}},
                    "additionalProperties": False,
                },
                "minItems": 3,
                "maxItems": 4,
            },
            {
                "type": "array",
                "prefixItems": [{"enum": ["and", "or"]}, {"type": "array", "items": FILTER_REF, "minItems": 1}],
                "minItems": 2,
                "maxItems": 2,
            },
            {"type": "array", "prefixItems": [{"const": "not"}, FILTER_REF], "minItems": 2, "maxItems": 2},
        ]
    }


def _body_schema() -> dict:
    """The query's JSON Schema: its shape and closed sets. Rules across fields (order_by names a
    metric or dimension of the query, one time dimension, percentage needs dimensions,
    conversion_rate needs goals, first <= last, patterns valid RE2) are checked by the parser,
    which says which one a query breaks (400)."""
    day = {"type": "string", "format": "date"}
    return {
        "type": "object",
        "required": ["site_id", "metrics", "date_range"],
        "additionalProperties": False,
        "properties": {
            "site_id": {"type": "string", "minLength": 1, "maxLength": 253},
            "metrics": {"type": "array", "items": {"enum": list(METRICS)}, "minItems": 1, "uniqueItems": True},
            "date_range": {
                "anyOf": [
                    {"enum": list(DATE_RANGES)},
                    {"type": "array", "prefixItems": [day, day], "minItems": 2, "maxItems": 2},
                ]
            },
            "dimensions": {
                "type": "array",
                "items": {"anyOf": [PROPERTY_SCHEMA, {"enum": list(TIME_DIMENSIONS)}]},
                "maxItems": MAX_DIMENSIONS,
                "uniqueItems": True,
            },
            "filters": {"type": "array", "items": FILTER_REF, "maxItems": MAX_FILTERS},
            "order_by": {
                "type": "array",
                "items": {
                    "type": "array",
                    "prefixItems": [{"type": "string"}, {"enum": ["asc", "desc"]}],
                    "minItems": 2,
                    "maxItems": 2,
                },
            },
            "include": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "total_rows": {"type": "boolean"},
                    "imports": {"type": "boolean"},  # Plausible's; there are no imports here
                    "time_labels": {"type": "boolean"},
                    "comparisons": {
                        "type": "object",
                        "properties": {"mode": {"enum": list(COMPARISONS)}},
                        "required": ["mode"],
                    },
                },
            },
            "pagination": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "limit": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
                    "offset": {"type": "integer", "minimum": 0},
                },
            },
        },
    }


def v2_router(analytics: Analytics, today: Callable[[], dt.date], site_access) -> APIRouter:
    """``site_access(site, authorization)`` raises Unauthorized (401) unless the caller may read."""
    router = APIRouter(prefix="/api/v2", tags=["stats v2"])

    @router.post(
        "/query",
        summary="Plausible Stats API v2 query",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _body_schema(), "example": EXAMPLE}},
            }
        },
    )
    async def query(
        request: Request,
        authorization: str | None = Header(None, description="Bearer <token> (private sites)"),
    ) -> dict:
        raw = await request.body()
        if len(raw) > MAX_BODY_BYTES:
            raise QueryError(f"the query is over {MAX_BODY_BYTES} bytes")
        try:
            body = json.loads(raw)
        except ValueError:
            raise QueryError("the body is not JSON; send a JSON object like the example in /docs") from None
        return await run_in_threadpool(answer, body, authorization)

    def answer(body, authorization: str | None):
        """Off the event loop: the registry and the store block."""
        parsed = parse_v2(body, today())
        site_access(parsed.site, authorization)
        return analytics.answer(parsed)

    return router

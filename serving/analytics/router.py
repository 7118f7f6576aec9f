"""``POST /api/v2/query``: Plausible's Stats API v2 over the analytics engine."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable

from fastapi import APIRouter, Header, Request
from fastapi.concurrency import run_in_threadpool

from serving.analytics.engine import Analytics
from serving.analytics.query import parse_v2
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


def v2_router(analytics: Analytics, today: Callable[[], dt.date], site_access) -> APIRouter:
    """``site_access(site, authorization)`` raises Unauthorized (401) unless the caller may read."""
    router = APIRouter(prefix="/api/v2", tags=["stats v2"])

    @router.post(
        "/query",
        summary="Plausible Stats API v2 query",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"type": "object"}, "example": EXAMPLE}},
            }
        },
        responses={
            400: {"description": "A query the API can't take; the message says what is allowed."},
            401: {"description": "A private site without a valid token."},
            503: {"description": "The query ran longer than the time budget and was stopped."},
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

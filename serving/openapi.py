"""The serving app's OpenAPI document says every status the API answers, and only those.

FastAPI lists 422 for every route with parameters; this API answers a parameter it can't take
with 400 (``validation_error_response``), as Plausible's does, so 422 goes and every Stats API
route lists 400, 401 (a private site without a valid token), 429 (over the rate limit, with
Retry-After) and 503 (the store over its time budget, or unreachable).
"""

from __future__ import annotations

import re

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse

from events.properties import CUSTOM_PREFIX, PROPERTIES
from events.props import MAX_KEY
from serving.analytics.query import GOAL

# A property's name: one of the closed set, event:goal, or event:props:<key>.
PROPERTY_PATTERN = (
    "^(" + "|".join(re.escape(name) for name in [*PROPERTIES, GOAL]) + f"|{re.escape(CUSTOM_PREFIX)}.{{1,{MAX_KEY}}})$"
)
PROPERTY_SCHEMA = {"type": "string", "pattern": PROPERTY_PATTERN}
ERROR = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
STATS_STATUSES = {
    "400": "A parameter or query the API can't take; the message says what is allowed.",
    "401": "A private (or unknown) site without a valid token for it.",
    "429": "Over the rate limit (per token, or per address without one); Retry-After says when to retry.",
    "503": "The store could not answer within the time budget (or at all); Retry-After says when to retry.",
}


def validation_error_response(_request: Request, exc: RequestValidationError) -> JSONResponse:
    """A parameter of the wrong type or out of its bounds: 400 with what was wrong (not 422)."""
    problems = [f"{'.'.join(str(p) for p in e.get('loc', ())[1:]) or 'request'}: {e.get('msg')}" for e in exc.errors()]
    return JSONResponse({"error": "; ".join(problems)[:1000]}, status_code=400)


def install_openapi(
    app: FastAPI,
    schemas: dict | None = None,
    stats_prefixes: tuple[str, ...] = ("/api/v1/stats", "/api/v2", "/api/sites/"),  # the last: the dashboard's
) -> None:
    """``schemas``: more components.schemas the routes refer to (e.g. a recursive one)."""
    app.add_exception_handler(RequestValidationError, validation_error_response)
    schemas_given = schemas or {}

    def document() -> dict:
        if app.openapi_schema:
            return app.openapi_schema
        spec = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        schemas = spec.setdefault("components", {}).setdefault("schemas", {})
        for name in ("HTTPValidationError", "ValidationError"):
            schemas.pop(name, None)
        schemas.update(schemas_given)
        schemas["Error"] = {
            "type": "object",
            "properties": {"error": {"type": "string"}},
            "required": ["error"],
        }
        for path, operations in spec["paths"].items():
            for operation in operations.values():
                responses = operation["responses"]
                responses.pop("422", None)
                if path.startswith(stats_prefixes):
                    for status, description in STATS_STATUSES.items():
                        responses[status] = {"description": description, "content": ERROR}
        app.openapi_schema = spec
        return spec

    app.openapi = document

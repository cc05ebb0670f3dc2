"""The one error model, the statuses each route documents, and how exceptions become answers.

Only a database or broker that cannot be reached answers 503 (with Retry-After): a value the
database refuses (out of range, wrong type) is the client's 422, a constraint it breaks a 409,
and anything else a logged 500.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.validation import readable_loc, with_hint
from shared.queueing import BrokerUnavailable
from shared.storage import StoreUnavailable

log = logging.getLogger(__name__)


class ErrorPublic(BaseModel):
    """Every error answer but 422 (whose `detail` lists the fields at fault)."""

    detail: str


DESCRIPTIONS = {
    401: "no valid Bearer token",
    403: "the caller may not do this (not the owner, not an admin)",
    404: "the named job, worker, user or artifact does not exist",
    409: "the job is not in a state that allows this",
    413: "request body over BOSUN_MAX_REQUEST_BYTES",
    429: "too many failed authentications from this address; see Retry-After",
    503: "database, job queue or object store unreachable; see Retry-After",
}


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries for these statuses, all with the error model."""
    return {code: {"model": ErrorPublic, "description": DESCRIPTIONS[code]} for code in codes}


AUTHENTICATED = responses(401, 429, 503)
"""Every route that needs a token and reads the database."""


def _unavailable(detail: str, retry_after: int = 5) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=503, headers={"Retry-After": str(retry_after)})


def is_connection_error(exc: DBAPIError) -> bool:
    """The database could not be reached or dropped the connection (not a refused value)."""
    return exc.connection_invalidated or isinstance(exc, (OperationalError, InterfaceError))


def _value_refused(msg: str) -> JSONResponse:
    return JSONResponse({"detail": [{"loc": ["request"], "msg": msg, "type": "value_error"}]}, status_code=422)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 400 and exc.detail == "There was an error parsing the body":
            # FastAPI's answer to a body it cannot decode (not UTF-8, not the declared media type).
            return JSONResponse({"detail": [{"loc": ["body"], "msg": "the body could not be parsed as JSON",
                                             "type": "json_invalid"}]}, status_code=422)
        return await http_exception_handler(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{**hinted, "loc": readable_loc(err["loc"], err.get("type", ""))}
                  for err in exc.errors() for hinted in [with_hint(err)]]
        return JSONResponse({"detail": jsonable_encoder(errors)}, status_code=422)

    @app.exception_handler(DBAPIError)
    async def _database_error(_request: Request, exc: DBAPIError) -> JSONResponse:
        if isinstance(exc, DataError):
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else "value refused"
            return _value_refused(f"a value is out of the database's range or type: {reason}")
        if isinstance(exc, IntegrityError):
            return JSONResponse({"detail": "the change conflicts with the stored data; reload and try again"},
                                status_code=409)
        if is_connection_error(exc):
            log.warning("database unavailable: %s", exc)
            return _unavailable("database unavailable, try again later")
        log.exception("database error")
        return JSONResponse({"detail": "internal error"}, status_code=500)

    @app.exception_handler(OverflowError)
    async def _overflow(_request: Request, exc: OverflowError) -> JSONResponse:
        return _value_refused(f"a number is too large for the database: {exc}")

    @app.exception_handler(BrokerUnavailable)
    async def _broker_down(_request: Request, exc: BrokerUnavailable) -> JSONResponse:
        return _unavailable(f"job queue unavailable, nothing was submitted: {exc}")

    @app.exception_handler(StoreUnavailable)
    async def _store_down(_request: Request, exc: StoreUnavailable) -> JSONResponse:
        return _unavailable(f"object store unavailable: {exc}")

"""The one error envelope: every error leaves as {"error": {message, type, param, code}}.

Services raise domain exceptions (server.exceptions) and libraries their own (pydantic's,
vLLM's, ValueError and its kin); `STATUS` below gives each its HTTP status, the one place
where a status is chosen for anything raised below the routes.
"""

import logging
import math

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from vllm.exceptions import VLLMClientError, VLLMNotFoundError, VLLMValidationError
from vllm.v1.engine.exceptions import EngineDeadError

from mixer.manifest import ManifestError
from mixer.simplex import WeightsError
from scorers import ScorerError
from server.exceptions import (
    Conflict,
    InvalidRequest,
    NotFound,
    Overloaded,
    RateLimited,
    ServiceError,
    ShuttingDown,
    Unsupported,
)
from store.weight_store import StoreUnavailable

logger = logging.getLogger(__name__)

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    405: "invalid_request_error",
    409: "conflict_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
    503: "service_unavailable_error",
}


class APIError(Exception):
    """An error meant for the client, with its HTTP status."""

    def __init__(
        self,
        status: int,
        message: str,
        param: str | None = None,
        code: str | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code
        self.retry_after_s = retry_after_s  # a Retry-After header for 429 and 503 (default: 1 s)


def error_body(status: int, message: str, param: str | None = None, code: str | None = None) -> dict:
    return {
        "error": {
            "message": message,
            "type": ERROR_TYPES.get(status, "internal_server_error"),
            "param": param,
            "code": code if code is not None else status,
        }
    }


def error_response(
    status: int, message: str, param: str | None = None, code: str | None = None, retry_after_s: float | None = None
) -> JSONResponse:
    headers = {}
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    if status in (429, 503):  # try again: when (whole seconds, as HTTP wants; clients honour it)
        headers["Retry-After"] = str(max(1, math.ceil(retry_after_s or 1)))
    return JSONResponse(error_body(status, message, param, code), status_code=status, headers=headers)


def _reason(msg: str) -> str:
    """A pydantic error message without pydantic's 'Value error, ' boilerplate."""
    return msg.removeprefix("Value error, ")


def describe_validation_error(err: ValidationError) -> str:
    """'field.path: reason; ...' from a pydantic error, without pydantic's boilerplate."""
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {_reason(e['msg'])}" for e in err.errors())


# What is raised below the routes, and its status: the first class an exception is an instance
# of decides (subclasses before their bases). Anything else is a logged 500.
STATUS: list[tuple[type[Exception], int]] = [
    (NotFound, 404),
    (Conflict, 409),
    (RateLimited, 429),
    (Overloaded, 503),
    (ShuttingDown, 503),
    (StoreUnavailable, 503),  # what is served goes on; what needs the store waits for it
    (EngineDeadError, 503),  # the process exits and its supervisor restarts it
    (Unsupported, 400),
    (InvalidRequest, 400),
    (VLLMNotFoundError, 404),  # vLLM's own verdict that the request is at fault
    (VLLMClientError, 400),
    (ValidationError, 400),
    (WeightsError, 400),
    (ManifestError, 400),
    (ScorerError, 400),
    (ValueError, 400),
    (TypeError, 400),
]
CLIENT_ERRORS = tuple(kind for kind, _ in STATUS)


def to_api_error(exc: Exception) -> APIError:
    """The client's error for anything raised below the routes (STATUS); the rest a logged 500."""
    if isinstance(exc, APIError):
        return exc
    status = next((status for kind, status in STATUS if isinstance(exc, kind)), None)
    if status is None:
        logger.exception("internal error", exc_info=exc)
        return APIError(500, f"internal error: {type(exc).__name__}")
    if isinstance(exc, ServiceError):
        return APIError(status, exc.message, exc.param, exc.code, getattr(exc, "retry_after_s", None))
    if isinstance(exc, StoreUnavailable):
        return APIError(status, f"{exc}; serving goes on with the weights applied last", code="store_unavailable")
    if isinstance(exc, EngineDeadError):
        return APIError(status, "the engine stopped; this server is restarting, retry", code="engine_dead")
    if isinstance(exc, ValidationError):
        return APIError(status, describe_validation_error(exc))
    param = getattr(exc, "parameter", None) if isinstance(exc, VLLMValidationError) else None
    return APIError(status, str(exc), param=param)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(APIError)
    async def _api_error(_: Request, exc: APIError) -> JSONResponse:
        return error_response(exc.status, exc.message, exc.param, exc.code, exc.retry_after_s)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"msg": "invalid request", "loc": ()}
        location = [str(p) for p in first.get("loc", ()) if p != "body"]
        param = ".".join(location) or None
        reason = _reason(str(first["msg"]))
        message = f"{param}: {reason}" if param else reason
        return error_response(400, message, param)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_response(exc.status_code, str(exc.detail))

    async def _translated(_: Request, exc: Exception) -> JSONResponse:
        error = to_api_error(exc)
        return error_response(error.status, error.message, error.param, error.code, error.retry_after_s)

    # Client errors raised below the routes get their own handlers: Starlette's catch-all
    # for Exception answers and then re-raises, which would drop the connection.
    for client_error in (*CLIENT_ERRORS, ServiceError):
        app.add_exception_handler(client_error, _translated)
    app.add_exception_handler(Exception, _translated)

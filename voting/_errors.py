"""The election service's one exception tree, and the HTTP error handler.

::

    ServiceError                   base of everything the service raises; ``code`` is stable API
    ├── ConfigurationError         settings refused at start-up (default secret outside development, ...)
    ├── InvalidRequest       400   a request is malformed beyond what the schema checks
    ├── ManifestError        422   the election manifest is invalid (``errors`` lists every problem)
    ├── RollFileError        422   the voter roll file is invalid (or contains a My Number column/value)
    ├── Unauthenticated      401   missing or wrong admin / trustee / voter credentials
    ├── Forbidden            403   authenticated, but not allowed to do this
    ├── NotFound             404   no such election, trustee, entry, ...
    ├── Conflict             409   the request is valid but not now: wrong phase, duplicate, already done
    ├── RejectedSubmission   422   a submitted object failed a cryptographic or semantic check
    ├── RateLimited          429   too many requests from one client address, session or credential
    └── ServiceUnavailable   503   the service cannot act safely: its private state is behind the ledger
                                   (``service.diverged``) or reconciliation failed (``reconcile.*``)

Every error has ``code`` (e.g. ``election.phase``), ``message`` (one operator-readable line, never personal
data) and ``status`` (HTTP status). :func:`install_error_handlers` makes FastAPI answer every one of them,
every request-validation failure, every :class:`crypto.CryptoError` and every :class:`voting.auth.AuthError`
as ``{"error": {"code": ..., "message": ...}}`` with a 4xx status, and anything unexpected as ``500
internal.error`` in the same shape. Nothing rejected changes the ledger: services check everything before
their single ledger append.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "ConfigurationError",
    "Conflict",
    "Forbidden",
    "InvalidRequest",
    "ManifestError",
    "NotFound",
    "RateLimited",
    "RejectedSubmission",
    "RollFileError",
    "ServiceError",
    "ServiceUnavailable",
    "Unauthenticated",
    "error_body",
    "install_error_handlers",
]


class ServiceError(Exception):
    """Base class of every error raised by the election service."""

    status: ClassVar[int] = 400
    default_code: ClassVar[str] = "service.error"

    def __init__(self, code: str | None = None, message: str = "", *, details: Any = None) -> None:
        self.code = code or self.default_code
        self.message = message or self.code
        self.details = details
        super().__init__(f"{self.code}: {self.message}")

    @property
    def operator_message(self) -> str:
        return self.message

    def to_body(self) -> dict[str, Any]:
        return error_body(self.code, self.message, self.details)


class ConfigurationError(ServiceError):
    status = 500
    default_code = "config.invalid"


class InvalidRequest(ServiceError):
    status = 400
    default_code = "request.invalid"


class ManifestError(ServiceError):
    """The manifest is invalid; ``details`` is the list of ``{"loc": ..., "msg": ...}`` problems."""

    status = 422
    default_code = "manifest.invalid"


class RollFileError(ServiceError):
    status = 422
    default_code = "roll.invalid"


class Unauthenticated(ServiceError):
    status = 401
    default_code = "auth.required"


class Forbidden(ServiceError):
    status = 403
    default_code = "auth.forbidden"


class NotFound(ServiceError):
    status = 404
    default_code = "not_found"


class Conflict(ServiceError):
    status = 409
    default_code = "conflict"


class RejectedSubmission(ServiceError):
    status = 422
    default_code = "submission.rejected"


class RateLimited(ServiceError):
    """429; ``retry_after`` (seconds) becomes the ``Retry-After`` header."""

    status = 429
    default_code = "rate_limited"

    def __init__(self, code: str | None = None, message: str = "", *, retry_after: int | None = None) -> None:
        super().__init__(code, message)
        self.retry_after = retry_after


class ServiceUnavailable(ServiceError):
    """503: the service cannot act safely (its private state is behind the ledger, docs/operator-guide.md)."""

    status = 503
    default_code = "service.unavailable"


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    err: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        err["details"] = details
    return {"error": err}


#: voting.auth codes that are not 401 at the API (the rest are: the credential was refused)
_AUTH_STATUS: dict[str, int] = {
    "dapp.unavailable": 503,
    "dapp.response": 502,
    "dapp.config": 500,
    "dapp.pending": 409,
}


def install_error_handlers(app: Any) -> None:
    """Register handlers on a FastAPI app (imported lazily so this module stays web-free)."""
    from fastapi import Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException as StarletteHTTPException

    from crypto import CryptoError, InvalidEncoding, VerificationError

    async def _service(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ServiceError)
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        if isinstance(exc, RateLimited) and exc.retry_after is not None:
            headers = {"Retry-After": str(exc.retry_after)}
        return JSONResponse(exc.to_body(), status_code=exc.status, headers=headers)

    async def _validation(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        problems = [
            {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", ""))} for e in exc.errors()
        ]
        return JSONResponse(
            error_body("request.invalid", "the request does not match its schema", problems),
            status_code=422,
        )

    async def _crypto(_: Request, exc: Exception) -> JSONResponse:
        if isinstance(exc, VerificationError):
            code = f"crypto.{exc.check}"
            msg = exc.operator_message
        elif isinstance(exc, InvalidEncoding):
            code, msg = "crypto.encoding", str(exc)
        else:
            code, msg = "crypto.error", str(exc)
        return JSONResponse(error_body(code, msg), status_code=422)

    async def _http(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, f"http.{exc.status_code}")
        return JSONResponse(
            error_body(code, str(exc.detail)), status_code=exc.status_code, headers=exc.headers
        )

    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        # a bug, not the caller's fault: still the documented shape, never a plain-text page or a traceback
        # (the server logs the exception itself). Starlette re-raises the exception to the server after this
        # answer, and the server then drops the connection: "Connection: close" tells the client not to reuse
        # it (a client sending its next request on it would otherwise see a connection reset).
        return JSONResponse(
            error_body("internal.error", "the server failed to answer this request"),
            status_code=500,
            headers={"connection": "close"},
        )

    app.add_exception_handler(ServiceError, _service)
    app.add_exception_handler(Exception, _unexpected)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(CryptoError, _crypto)
    app.add_exception_handler(StarletteHTTPException, _http)
    from voting.auth._errors import AuthError  # here, not at the top: the voter client imports this module

    async def _auth(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, AuthError)
        # the signing app failing is not the voter's fault: 503 (down) / 502 (answered outside its shape);
        # a transaction the resident has not approved yet is a state to wait for: 409
        status = 422 if exc.code.startswith("roll.") else _AUTH_STATUS.get(exc.code, 401)
        return JSONResponse(error_body(exc.code, exc.operator_message), status_code=status)

    app.add_exception_handler(AuthError, _auth)

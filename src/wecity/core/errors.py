"""The platform's one error tree.

Every service raises only these. Each error has a stable machine `code` (``"case.invalid_transition"``),
an HTTP `status`, and a message in English and 简体中文; each protocol renders it in its own format
(Open311 error arrays, NGSI-LD ProblemDetails, RFC 9457 problem+json, a translated page).

    WeCityError                      base; status 500
    ├── ConfigurationError           a setting is unusable at start (not an HTTP error)
    ├── ValidationFailed             input is malformed or breaks a rule; 400
    │   └── UnsupportedMedia         an upload is not an accepted image, or too big; 400
    ├── AuthenticationRequired       no or bad credentials (Open311 api_key, session); 401 (Open311: 403)
    ├── PermissionDenied             credentials are good but not enough; 403
    ├── NotFound                     the named resource does not exist; 404
    ├── MethodNotAllowed             the resource exists but not for this HTTP method; 405
    ├── Conflict                     the request clashes with the current state; 409
    │   ├── AlreadyExists            a unique name or id is taken; 409
    │   └── InvalidTransition        a case cannot move that way from its state; 409
    ├── PayloadTooLarge              a request body over its size limit (wecity.core.bodylimit); 413
    ├── RateLimited                  too many requests; 429
    ├── DependencyUnavailable        the database or a broker cannot be reached; 503
    └── HttpError                    an HTTP status the web framework answered that no class above has
                                     (414 for an overlong address, say); one subclass per status
"""

from __future__ import annotations

import functools
from typing import Any, ClassVar


class WeCityError(Exception):
    status: ClassVar[int] = 500
    default_code: ClassVar[str] = "internal"

    def __init__(self, message: str, *, code: str | None = None, message_zh: str | None = None,
                 details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.message_zh = message_zh or message
        self.code = code or self.default_code
        self.details = details or {}

    def localized(self, locale: str) -> str:
        return self.message_zh if locale.startswith("zh") else self.message


class ConfigurationError(WeCityError):
    default_code = "config.invalid"

    def __init__(self, setting: str, reason: str) -> None:
        super().__init__(f"{setting}: {reason}", message_zh=f"配置项 {setting} 无效：{reason}")
        self.setting = setting
        self.reason = reason


class ValidationFailed(WeCityError):
    status = 400
    default_code = "validation.failed"


class UnsupportedMedia(ValidationFailed):
    default_code = "media.unsupported"


class AuthenticationRequired(WeCityError):
    status = 401
    default_code = "auth.required"


class PermissionDenied(WeCityError):
    status = 403
    default_code = "auth.forbidden"


class NotFound(WeCityError):
    status = 404
    default_code = "not_found"


class MethodNotAllowed(WeCityError):
    status = 405
    default_code = "method_not_allowed"


class Conflict(WeCityError):
    status = 409
    default_code = "conflict"


class AlreadyExists(Conflict):
    default_code = "conflict.exists"


class InvalidTransition(Conflict):
    default_code = "case.invalid_transition"


class PayloadTooLarge(WeCityError):
    status = 413
    default_code = "payload_too_large"


class RateLimited(WeCityError):
    """Too many requests; `retry_after` is the whole seconds to wait, sent as the Retry-After header."""

    status = 429
    default_code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int = 60, code: str | None = None,
                 message_zh: str | None = None, details: dict[str, Any] | None = None) -> None:
        super().__init__(message, code=code, message_zh=message_zh, details=details)
        self.retry_after = max(1, int(retry_after))


class DependencyUnavailable(WeCityError):
    status = 503
    default_code = "dependency.unavailable"


class HttpError(WeCityError):
    default_code = "http.error"


@functools.cache
def _http_error_class(code: int) -> type[HttpError]:
    # A status is a fact about a class here, never set on an instance, so a status the tree does not
    # name gets a class of its own, made once.
    class StatusError(HttpError):
        status = code
        default_code = f"http.{code}"

    StatusError.__name__ = StatusError.__qualname__ = f"HttpError{code}"
    return StatusError


_CLASS_OF_STATUS: dict[int, type[WeCityError]] = {
    cls.status: cls for cls in (ValidationFailed, AuthenticationRequired, PermissionDenied, NotFound,
                                MethodNotAllowed, Conflict, PayloadTooLarge, RateLimited, DependencyUnavailable)}


def error_for_status(status: int, message: str, *, message_zh: str) -> WeCityError:
    """The platform's error for an HTTP status the web framework chose (its routing, its body parsing),
    so that every protocol renders it like its own errors: the class that has the status, else an
    HttpError of exactly that status."""
    cls = _CLASS_OF_STATUS.get(status) or _http_error_class(status)
    return cls(message, message_zh=message_zh)

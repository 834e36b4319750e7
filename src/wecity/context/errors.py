"""The NGSI-LD errors the broker raises, one constructor per error family (ETSI GS CIM 009, 5.5.2).

Each is the platform's error class (`wecity.core.errors`) with an `ngsild.*` code; the /ngsi-ld
renderer (`protocol.problem`) maps the code to the ProblemDetails type and status the ETSI conformance
suite expects, through `PROBLEMS` below for the codes whose class does not already say it (a
ValidationFailed is 400 BadRequestData, a NotFound 404 ResourceNotFound, an AlreadyExists 409)."""

from __future__ import annotations

from collections.abc import Callable

from wecity.core.errors import (
    AlreadyExists,
    AuthenticationRequired,
    DependencyUnavailable,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)

BAD_REQUEST_DATA = "ngsild.bad_request_data"
INVALID_REQUEST = "ngsild.invalid_request"
UNSUPPORTED_MEDIA_TYPE = "ngsild.unsupported_media_type"
NOT_ACCEPTABLE = "ngsild.not_acceptable"
OPERATION_NOT_SUPPORTED = "ngsild.operation_not_supported"
TOO_MANY_RESULTS = "ngsild.too_many_results"
LD_CONTEXT_NOT_AVAILABLE = "ngsild.ld_context_not_available"
JSONLD_CONTEXT_UNREACHABLE = "ngsild.jsonld_context_unreachable"
NONEXISTENT_TENANT = "ngsild.nonexistent_tenant"
NOT_FOUND = "ngsild.not_found"
ALREADY_EXISTS = "ngsild.already_exists"
UNAUTHORIZED = "ngsild.unauthorized"
CONFLICT = "ngsild.conflict"
LOOP_DETECTED = "ngsild.loop_detected"

# ProblemDetails type (after https://uri.etsi.org/ngsi-ld/errors/) and HTTP status by code, where the
# error's class alone would say otherwise.
PROBLEMS: dict[str, tuple[str, int]] = {
    INVALID_REQUEST: ("InvalidRequest", 400),
    UNSUPPORTED_MEDIA_TYPE: ("InvalidRequest", 415),
    NOT_ACCEPTABLE: ("InvalidRequest", 406),
    OPERATION_NOT_SUPPORTED: ("OperationNotSupported", 422),
    TOO_MANY_RESULTS: ("TooManyResults", 403),
    # A remote @context that cannot be retrieved: the broker, as a gateway to it, got no answer (5.5.6).
    LD_CONTEXT_NOT_AVAILABLE: ("LdContextNotAvailable", 504),
    # A subscription's jsonldContext that cannot be fetched: the broker as a gateway got no answer (5.8.1).
    JSONLD_CONTEXT_UNREACHABLE: ("LdContextNotAvailable", 504),
    NONEXISTENT_TENANT: ("NonexistentTenant", 404),
    # A registration that would take over what another registration or an existing entity holds (5.9.2.4),
    # or an operation a context source holding the data does not support (5.6.x.4).
    CONFLICT: ("Conflict", 409),
    # A forwarded request that came back to this broker (clause 6.3.17, RFC 5842).
    LOOP_DETECTED: ("LoopDetected", 508),
}


def bad_request_data(why: str, zh: str) -> ValidationFailed:
    """BadRequestData (400): the request is well-formed but its data is not (an entity, a query...)."""
    return ValidationFailed(why, message_zh=zh, code=BAD_REQUEST_DATA)


def language_error(what: str, what_zh: str) -> Callable[[str, str], ValidationFailed]:
    """The BadRequestData constructor of a query language (q, scopeQ, the type selection): its
    messages name the language, "invalid q: ..." / "q 查询无效：..."."""

    def make(why: str, zh: str) -> ValidationFailed:
        return bad_request_data(f"invalid {what}: {why}", f"{what_zh}无效：{zh}")

    return make


def invalid_request(why: str, zh: str) -> ValidationFailed:
    """InvalidRequest (400): the request itself is malformed (body not JSON, unknown options...)."""
    return ValidationFailed(why, message_zh=zh, code=INVALID_REQUEST)


def unsupported_media_type(why: str, zh: str) -> ValidationFailed:
    """InvalidRequest with 415: a Content-Type the broker does not read."""
    return ValidationFailed(why, message_zh=zh, code=UNSUPPORTED_MEDIA_TYPE)


def not_acceptable(why: str, zh: str) -> ValidationFailed:
    """InvalidRequest with 406: an Accept the broker cannot answer."""
    return ValidationFailed(why, message_zh=zh, code=NOT_ACCEPTABLE)


def operation_not_supported(why: str, zh: str) -> ValidationFailed:
    """OperationNotSupported (422)."""
    return ValidationFailed(why, message_zh=zh, code=OPERATION_NOT_SUPPORTED)


def too_many_results(why: str, zh: str) -> ValidationFailed:
    """TooManyResults (403)."""
    return ValidationFailed(why, message_zh=zh, code=TOO_MANY_RESULTS)


def jsonld_context_unreachable(why: str, zh: str) -> ValidationFailed:
    """LdContextNotAvailable with 504: a subscription's jsonldContext the broker cannot fetch."""
    return ValidationFailed(why, message_zh=zh, code=JSONLD_CONTEXT_UNREACHABLE)


def ld_context_not_available(why: str, zh: str) -> DependencyUnavailable:
    """LdContextNotAvailable (504): a request's @context cannot be retrieved."""
    return DependencyUnavailable(why, message_zh=zh, code=LD_CONTEXT_NOT_AVAILABLE)


def nonexistent_tenant(why: str, zh: str) -> NotFound:
    """NonexistentTenant (404): an operation other than a creation on a tenant that does not exist."""
    return NotFound(why, message_zh=zh, code=NONEXISTENT_TENANT)


def resource_not_found(why: str, zh: str) -> NotFound:
    """ResourceNotFound (404)."""
    return NotFound(why, message_zh=zh, code=NOT_FOUND)


def already_exists(why: str, zh: str) -> AlreadyExists:
    """AlreadyExists (409)."""
    return AlreadyExists(why, message_zh=zh, code=ALREADY_EXISTS)


def conflict(why: str, zh: str) -> AlreadyExists:
    """Conflict (409): the request contradicts what the broker already holds, other than by an id (or
    the context source holding the data does not support the operation)."""
    return AlreadyExists(why, message_zh=zh, code=CONFLICT)


def loop_detected(why: str, zh: str) -> ValidationFailed:
    """LoopDetected (508): the request was forwarded back to a broker it had passed through."""
    return ValidationFailed(why, message_zh=zh, code=LOOP_DETECTED)


def forbidden(why: str, zh: str) -> PermissionDenied:
    """403: good credentials without the scope or tenant the request needs."""
    return PermissionDenied(why, message_zh=zh, code="ngsild.forbidden")


def unauthorized(why: str, zh: str) -> AuthenticationRequired:
    """401 (InvalidRequest in ProblemDetails, with WWW-Authenticate): no or bad credentials."""
    return AuthenticationRequired(why, message_zh=zh, code=UNAUTHORIZED)

"""HTTP plumbing shared by every domain's thin adapters: the context dependency, locale, errors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response

from wecity.core.context import AppContext
from wecity.core.errors import RateLimited, ValidationFailed, WeCityError


def get_ctx(request: Request) -> AppContext:
    return request.app.state.ctx  # type: ignore[no-any-return]


Ctx = Annotated[AppContext, Depends(get_ctx)]


def request_locale(request: Request) -> str:
    """zh_CN or en: the `lang` query or cookie, else Accept-Language, else Chinese (the city's language)."""
    chosen = request.query_params.get("lang") or request.cookies.get("lang")
    if chosen:
        return "en" if chosen.lower().startswith("en") else "zh_CN"
    header = request.headers.get("accept-language", "")
    best, best_q = "zh_CN", -1.0
    for part in header.split(","):
        piece = part.strip().split(";")
        tag = piece[0].strip().lower()
        q = 1.0
        for param in piece[1:]:
            if param.strip().startswith("q="):
                try:
                    q = float(param.strip()[2:])
                except ValueError:
                    q = 0.0
        if tag.startswith(("zh", "en")) and q > best_q:
            best, best_q = ("zh_CN" if tag.startswith("zh") else "en"), q
    return best


def client_address(request: Request) -> str | None:
    return request.client.host if request.client else None


def problem_response(request: Request, exc: WeCityError) -> Response:
    """RFC 9457 problem+json, the platform API's error format."""
    body: dict[str, Any] = {
        "type": f"urn:wecity:error:{exc.code}",
        "title": exc.localized(request_locale(request)),
        "status": exc.status,
        "code": exc.code,
    }
    if exc.details:
        body["details"] = exc.details
    return JSONResponse(body, status_code=exc.status, media_type="application/problem+json")


# Path prefix -> renderer. Protocol adapters register theirs (Open311 error arrays, NGSI-LD
# ProblemDetails); the longest matching prefix wins, problem+json otherwise.
ErrorRenderer = Callable[[Request, WeCityError], Response]


def renderer_for(request: Request) -> ErrorRenderer:
    """How an error on this request's path is answered: the renderer of the longest matching prefix."""
    renderers: dict[str, ErrorRenderer] = getattr(request.app.state, "error_renderers", {})
    path = request.url.path
    return next((renderers[p] for p in sorted(renderers, key=len, reverse=True) if path.startswith(p)),
                problem_response)


def render_error(request: Request, exc: WeCityError) -> Response:
    return with_retry_after(renderer_for(request)(request, exc), exc)


def with_retry_after(response: Response, exc: WeCityError) -> Response:
    """A refusal for too many requests says when to come back (RFC 9110 Retry-After), in every protocol."""
    if isinstance(exc, RateLimited):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


# Database ids as path parameters: positive and within a 32-bit integer, so a hostile number is a clean
# 422/400 instead of a driver overflow.
MAX_ID = 2_147_483_647


def id_param(description: str = "id") -> object:
    from fastapi import Path

    return Path(ge=1, le=MAX_ID, description=description)


def amend_openapi(app: FastAPI, amend: Callable[[dict[str, Any]], None]) -> None:
    """Let `amend` complete the app's /openapi.json once it is generated: definitions the routes refer to
    by `$ref` from their `openapi_extra` (components), or what the framework cannot say of a parameter."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            amend(generate())
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign]


# The request body of a route that takes one file, for its OpenAPI description (the route reads the body
# itself, with `one_file`, so it declares no `UploadFile` parameter).
ONE_FILE_BODY = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["file"], "properties": {"file": {"type": "string", "format": "binary"}}}}}}}


async def one_file(request: Request, *, max_bytes: int, code: str, what_en: str, what_zh: str) -> tuple[bytes, str]:
    """The multipart field `file` of the request: (its bytes, at most `max_bytes` + 1 of them, so the caller
    can tell a file over the limit; its name). Called after the caller's rights are checked: a route that
    declared an `UploadFile` parameter would have FastAPI take in the whole upload before any check."""
    form = await request.form(max_files=1, max_fields=5)
    try:
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise ValidationFailed(f"send the {what_en} as the multipart field `file`",
                                   message_zh=f"请以 file 字段上传{what_zh}", code=code)
        return await upload.read(max_bytes + 1), upload.filename or ""
    finally:
        await form.close()

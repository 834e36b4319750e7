"""Request bodies bounded as they arrive, for every route (the NGSI-LD fast path included).

Without it a 200 MB JSON body was read whole before anything looked at it, and an entity that size was
stored. One ASGI middleware, in front of all routing, counts the bytes the server hands over and stops
at the limit for the kind of body: JSON (and anything that is not a form), URL-encoded forms, multipart
uploads, and larger limits that a domain asks for under a path prefix (NGSI-LD batch operations). A
Content-Length over the limit is refused before a byte is read. The answer is a 413 in the protocol's
own format (wecity.core.http.render_error), and the connection is closed, since the rest of the body
is left unread.

The Content-Type is the caller's word, so it does not choose the limit alone: the upload allowance
(UPLOAD_PATHS) is only for the routes that take files, and a request with two Content-Type headers is
refused (the app reads the first; a limit chosen from another would not be the body's).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request

from wecity.core.errors import PayloadTooLarge, ValidationFailed, WeCityError
from wecity.core.http import render_error
from wecity.core.settings import Settings

_FORM = b"application/x-www-form-urlencoded"
_MULTIPART = b"multipart/form-data"
_KINDS = {"json": ("JSON bodies", "JSON 请求体"), "form": ("forms", "表单"), "multipart": ("uploads", "上传内容"),
          "larger": ("bodies at this address", "此地址的请求体")}
# The routes that take files, the only ones a multipart body may be as large as an upload on (`*`: one path
# segment). Any other route gets the form limit for a multipart body: a sign-in declared as multipart would
# otherwise have been read up to the upload allowance (about 100 MB) before anything refused it.
UPLOAD_PATHS = (
    "/report",  # the portal's report form, with photos
    "/track/*/update",  # a reporter's update, with a photo
    "/staff/cases/*/resolve", "/staff/cases/*/note",  # staff actions with evidence photos
    "/services/applications/*/upload",  # an applicant's materials (portal)
    "/data/*/rows",  # a dataset's table, CSV or XLSX (portal)
    "/open311/v2/requests.*",  # Open311 requests with media
    "/api/v1/media",  # a staff evidence photo
    "/api/v1/applications/*/materials/*",  # an applicant's materials (API)
    "/api/v1/datasets/*/rows",  # a dataset's table (API)
    "/api/v1/enterprises/import",  # the enterprise register, CSV or XLSX
)


def _paths(patterns: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile("|".join(re.escape(p).replace(r"\*", "[^/]+") for p in patterns))


@dataclass(slots=True)
class BodyLimits:
    """The most bytes a request body may have, by kind; `larger` raises the JSON limit under a path
    prefix (longest prefix first)."""

    json: int
    form: int
    multipart: int
    larger: dict[str, int] = field(default_factory=dict)
    uploads: re.Pattern[str] = field(default_factory=lambda: _paths(UPLOAD_PATHS))

    @classmethod
    def from_settings(cls, settings: Settings) -> BodyLimits:
        return cls(settings.max_json_bytes, settings.max_form_bytes, settings.max_multipart_bytes)

    def allow_larger(self, prefix: str, limit: int) -> None:
        """Bodies under `prefix` (not forms) may have up to `limit` bytes."""
        self.larger[prefix] = limit
        self.larger = dict(sorted(self.larger.items(), key=lambda item: len(item[0]), reverse=True))

    def of(self, path: str, content_type: bytes) -> tuple[int, str]:
        """The limit for a body to `path` of that Content-Type, and the kind it counts as: a multipart body
        has the upload limit on a route that takes files, the form limit elsewhere."""
        media = content_type.split(b";", 1)[0].strip().lower()
        if media == _MULTIPART and self.uploads.fullmatch(path):
            return self.multipart, "multipart"
        if media in (_MULTIPART, _FORM):
            return self.form, "form"
        for prefix, limit in self.larger.items():
            if path.startswith(prefix):
                return limit, "larger"
        return self.json, "json"


def too_large(limit: int, kind: str) -> PayloadTooLarge:
    en, zh = _KINDS[kind]
    return PayloadTooLarge(f"the request body is larger than the {limit} bytes allowed for {en}",
                           message_zh=f"请求体过大：{zh}最多 {limit} 字节", details={"limit": limit})


class BodyLimit:
    """ASGI middleware: each http request's body counted against `limits` as it is received."""

    def __init__(self, app: Any, limits: BodyLimits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        types = [value for name, value in scope["headers"] if name == b"content-type"]
        if len(types) > 1:
            await _refuse(scope, receive, send, ValidationFailed(
                "send one Content-Type header", message_zh="请求只能有一个 Content-Type 头",
                code="request.content_type_repeated"))
            return
        declared = next((value for name, value in scope["headers"] if name == b"content-length"), b"")
        limit, kind = self.limits.of(scope["path"], types[0] if types else b"")
        if declared.isdigit() and int(declared) > limit:
            await _refuse(scope, receive, send, too_large(limit, kind))
            return
        received = 0
        cut: PayloadTooLarge | None = None
        started = False

        async def receive_counted() -> Any:
            nonlocal received, cut
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    cut = too_large(limit, kind)
                    raise cut
            return message

        async def send_unless_cut(message: dict[str, Any]) -> None:
            nonlocal started
            if cut is not None and not started:
                return  # whatever the app made of the cut body (a 400 from a parser, say), the 413 below
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive_counted, send_unless_cut)
        except Exception:  # raised on the cut body, by the limit itself or by what read it: answered below
            if cut is None or started:
                raise
        if cut is not None and not started:
            await _refuse(scope, receive, send, cut)


async def _refuse(scope: dict[str, Any], receive: Any, send: Any, error: WeCityError) -> None:
    response = render_error(Request(scope, receive), error)
    response.headers["Connection"] = "close"
    await response(scope, receive, send)


def install(app: Any, settings: Settings) -> BodyLimits:
    """Bound the bodies of every request to `app` as `settings` say; domains raise the limit under their
    prefixes with the returned limits' allow_larger (kept on app.state.body_limits)."""
    limits = app.state.body_limits = BodyLimits.from_settings(settings)
    app.add_middleware(BodyLimit, limits=limits)
    return limits

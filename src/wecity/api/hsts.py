"""Strict-Transport-Security on every answer sent over HTTPS, so browsers stop trying plain HTTP.

Only over HTTPS: the header is ignored on plain HTTP anyway, and sending it there would wrongly suggest the
site is on TLS. "Over HTTPS" is the request's scheme as the server saw it: uvicorn sets it from a trusted
proxy's X-Forwarded-Proto (peers in FORWARDED_ALLOW_IPS, this machine by default) and ignores that header from
anyone else, so a client cannot switch the header on or off by sending one.
"""

from __future__ import annotations

from typing import Any

# One year: a browser that saw it once keeps to HTTPS between visits. No includeSubDomains: the other hosts
# of the city's domain are not the platform's to commit to HTTPS.
HSTS = (b"strict-transport-security", b"max-age=31536000")


class HstsMiddleware:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("scheme") != "https":
            await self.app(scope, receive, send)
            return

        async def send_with_hsts(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), HSTS]
            await send(message)

        await self.app(scope, receive, send_with_hsts)

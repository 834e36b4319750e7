"""/docs: Swagger UI for the platform's OpenAPI document, served by the platform itself.

FastAPI's own page loads Swagger UI from a CDN and starts it with an inline script, which a closed network
cannot reach and the portal's CSP (script-src 'self') would refuse. This page loads the vendored copy
(static/vendor/swagger-ui-dist-*) and starts it from static/js/api-docs.js, under the same headers as every
portal page.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse

from wecity.web.render import bare_page

router = APIRouter(include_in_schema=False)


@router.get("/docs")
async def api_docs(request: Request) -> HTMLResponse:
    return bare_page(request, "web/api_docs.html", openapi_url=request.app.openapi_url)

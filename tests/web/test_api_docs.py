"""/docs: Swagger UI from the platform's own files, under the portal's CSP, nothing from another origin."""

from __future__ import annotations

import re

from ..conftest import City, make_client


def test_docs_load_swagger_ui_from_the_platform_under_the_portals_csp(sqlite_city: City) -> None:
    with make_client(sqlite_city) as client:
        page = client.get("/docs")
        assert page.status_code == 200
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert page.headers["x-frame-options"] == "DENY"
        html = page.text
        # Every script is a file of this site (the CSP would refuse an inline one), every link too.
        assert re.findall(r"<script(?![^>]*\bsrc=)", html) == []
        assets = re.findall(r'(?:src|href)="([^"]+)"', html)
        assert assets and all(a.startswith("/static/") for a in assets), assets
        assert 'data-openapi-url="/openapi.json"' in html
        for asset in assets:
            served = client.get(asset)
            assert served.status_code == 200, asset
        assert "SwaggerUIBundle" in client.get(next(a for a in assets if a.endswith("bundle.js"))).text
        assert client.get("/openapi.json").json()["paths"]


def test_frameworks_cdn_pages_are_gone(sqlite_city: City) -> None:
    with make_client(sqlite_city) as client:
        assert client.get("/redoc").status_code == 404
        assert "cdn.jsdelivr.net" not in client.get("/docs").text

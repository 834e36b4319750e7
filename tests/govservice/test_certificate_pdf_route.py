"""A certificate's PDF is drawn off the event loop, and a citizen may have only so many drawn."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from wecity.govservice import api as service_api

from ..conftest import make_client
from .conftest import Services
from .test_api import _licence, citizen_headers


def test_the_pdf_is_drawn_in_a_worker_thread_and_counted_per_citizen(services: Services,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    s = services
    drawn: list[bool] = []

    def fake_render(held: dict[str, Any], url: str, *, zone: Any) -> bytes:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            drawn.append(False)  # no event loop in this thread: a worker's
        else:
            drawn.append(True)
        return b"%PDF-1.4 fake"

    monkeypatch.setattr(service_api, "render_pdf", fake_render)
    with make_client(s.city) as api:
        number = _licence(api, s)
        me = citizen_headers(s, "13912345678")
        per_minute = min(w.limit for w in service_api.CERTIFICATE_PDF_LIMIT)
        for _ in range(per_minute):
            r = api.get(f"/api/v1/certificates/{number}/pdf", headers=me)
            assert r.status_code == 200 and r.content.startswith(b"%PDF")
        assert drawn == [False] * per_minute
        over = api.get(f"/api/v1/certificates/{number}/pdf", headers=me)
        assert over.status_code == 429 and "Retry-After" in over.headers
        assert len(drawn) == per_minute
        # Another citizen has a count of their own (and no such certificate in their wallet).
        assert api.get(f"/api/v1/certificates/{number}/pdf",
                       headers=citizen_headers(s, "13987654321")).status_code == 404

"""Fixtures for the portal's page tests: a client on a fresh demo city, and a logged-in staff client."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import City, make_client
from wecity.demo.changsha import DEMO_PASSWORD

CSRF_RE = re.compile(r'name="csrf_token" value="([0-9a-f]{64})"')


def csrf_token(html: str) -> str:
    match = CSRF_RE.search(html)
    assert match, "page has no CSRF token field"
    return match.group(1)


def log_in(client: Any, username: str, password: str = DEMO_PASSWORD, next_path: str = "/staff") -> Any:
    token = csrf_token(client.get("/login").text)
    return client.post("/login", data={"username": username, "password": password, "csrf_token": token,
                                       "next": next_path}, follow_redirects=False)


@pytest.fixture
def web(sqlite_city: City) -> Iterator[Any]:
    with make_client(sqlite_city) as c:
        yield c


@pytest.fixture
def web_city(city: City) -> Iterator[tuple[Any, City]]:
    """A client and its city, on SQLite and on PostgreSQL, for the flows that write through the case engine."""
    with make_client(city) as c:
        yield c, city


@pytest.fixture
def decoded_photos(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many photos each call of the upload check decoded (`uploads.check_all`), in order."""
    from wecity.media import uploads

    decoded: list[int] = []
    check_all = uploads.check_all

    async def counted(files: Any, ctx: Any) -> Any:
        decoded.append(len(files))
        return await check_all(files, ctx)

    monkeypatch.setattr(uploads, "check_all", counted)
    return decoded

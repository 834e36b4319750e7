"""Browser tests: a real `wecity demo` server on a free port, driven by Playwright in Debian's Chromium.

Playwright cannot download its own browser here, so it drives /usr/bin/chromium (`make test` installs it
through scripts/test-services.sh). Screenshots go to tests/e2e/screenshots/ (git-ignored) for people to look at.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

CHROMIUM = os.environ.get("WECITY_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
SCREENSHOTS = Path(__file__).parent / "screenshots"
PHONE = {"width": 390, "height": 844}
SERVER_LOG: dict[str, Path] = {}  # "path" -> the test server's log, for what the demo writes there (SMS)
DESKTOP = {"width": 1280, "height": 900}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="package")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fresh demo city served by `wecity demo` (its own SQLite database) on 127.0.0.1:<free port>."""
    yield from serve_demo(tmp_path_factory.mktemp("e2e-var"))


def serve_demo(var: Path, *args: str, record_log: bool = True) -> Iterator[str]:
    """`wecity demo [args]` with WECITY_VAR_DIR=var (what is already there, a base map say, it uses), until
    closed; its log is the one the tests read SMS codes from when `record_log`."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("WECITY_")}
    env.update(WECITY_VAR_DIR=str(var), PYTHONUNBUFFERED="1")
    log = (var / "server.log").open("wb")
    if record_log:
        SERVER_LOG["path"] = var / "server.log"
    process = subprocess.Popen([sys.executable, "-m", "wecity", "demo", "--host", "127.0.0.1", "--port", str(port),
                                *args],
                               env=env, cwd=var, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    try:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"wecity demo exited with {process.returncode}:\n"
                                   + (var / "server.log").read_text(errors="replace")[-3000:])
            try:
                if httpx.get(base + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("wecity demo did not become ready in 90 s:\n"
                                   + (var / "server.log").read_text(errors="replace")[-3000:])
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


# Package scope: Playwright's sync API keeps an event loop running while it is open, which would break
# every later test that calls asyncio.run; it is closed when the browser tests are done.
@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        pytest.skip(f"browser tests need Chromium at {CHROMIUM} (scripts/test-services.sh installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


class Pages:
    """Opens browser pages on the test server in a language and a viewport, and records what goes wrong."""

    def __init__(self, browser: Any, base: str) -> None:
        self.browser = browser
        self.base = base
        self.contexts: list[Any] = []
        self.errors: list[str] = []
        self.external: list[str] = []
        self.allowed: list[str] = []

    def allow_error(self, text: str) -> None:
        """A console error containing `text` is expected (a form answered 401 on purpose, say)."""
        self.allowed.append(text)

    def open(self, locale: str = "zh-CN", viewport: dict[str, int] | None = None, **options: Any) -> Any:
        context = self.browser.new_context(locale=locale, viewport=viewport or DESKTOP, base_url=self.base,
                                           extra_http_headers={"Accept-Language": locale}, **options)
        self.contexts.append(context)

        # Nothing may leave the platform: a request to any other origin is recorded and refused.
        def route(route: Any) -> None:
            if not route.request.url.startswith(self.base) and not route.request.url.startswith(("data:", "blob:")):
                self.external.append(route.request.url)
                route.abort()
            else:
                route.continue_()

        context.route("**/*", route)
        page = context.new_page()
        page.on("pageerror", lambda exc: self.errors.append(f"page error: {exc}"))
        page.on("console", lambda msg: self.errors.append(f"console {msg.type}: {msg.text}")
                if msg.type == "error" else None)
        return page

    def close(self) -> None:
        for context in self.contexts:
            context.close()


@pytest.fixture
def pages(browser: Any, server: str) -> Iterator[Pages]:
    p = Pages(browser, server)
    yield p
    p.close()
    assert not p.external, f"pages asked for external URLs: {p.external}"
    errors = [e for e in p.errors if not any(a in e for a in p.allowed)]
    assert not errors, "\n".join(errors)


def shot(page: Any, name: str, *, full_page: bool = True) -> Path:
    SCREENSHOTS.mkdir(exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


def sms_code(phone: str, timeout: float = 30) -> str:
    """The code from the SMS in the demo's outbox: with no SMS gateway the log shows it masked, as it must."""
    database = SERVER_LOG["path"].parent / "demo.db"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as conn:
            rows = conn.execute("SELECT payload FROM outbox_messages WHERE channel = 'webhook' AND target = 'sms' "
                                "ORDER BY id DESC").fetchall()
        for (payload,) in rows:
            message = json.loads(payload)
            found = re.search(r"验证码是 (\d{6})", message.get("text", ""))
            if message.get("event") == "portal_code" and message.get("phone") == phone and found:
                assert found.group(1) not in SERVER_LOG["path"].read_text(errors="replace")
                return found.group(1)
        time.sleep(0.5)
    raise AssertionError("no SMS with a code in the outbox")


def import_basemap(var: Path, extract: Path) -> str:
    """`wecity city import-basemap` run for real into `var` (the street map and the address search), skipped
    with its reason where Debian's tilemaker is missing; what the command printed."""
    if shutil.which("tilemaker") is None:
        pytest.skip("the street map needs Debian's tilemaker (scripts/test-services.sh installs it)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("WECITY_")} | {"WECITY_VAR_DIR": str(var)}
    done = subprocess.run([sys.executable, "-m", "wecity", "city", "import-basemap", str(extract)], env=env,
                          cwd=var, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def checked_pages(browser: Any, base: str) -> Iterator[Pages]:
    """Pages on another server than the package's, with the same checks when they close."""
    p = Pages(browser, base)
    yield p
    p.close()
    assert not p.external, f"pages asked for external URLs: {p.external}"
    assert not p.errors, "\n".join(p.errors)

"""The PyPI `ngsildclient` against a running `wecity serve`: connect (GET /entities?limit=0&count=true),
create, retrieve, count, batch upsert, query and delete.

ngsildclient pins an old httpx, so it lives in its own virtual environment (.venv-ngsild, made by
`make ngsild-client`); the test runs a small script with that environment's Python."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import City

ROOT = Path(__file__).resolve().parents[2]
CLIENT_PYTHON = Path(os.environ.get("WECITY_NGSILD_CLIENT_VENV", ROOT / ".venv-ngsild")) / "bin" / "python"

SCRIPT = r"""
import json, sys
from requests.auth import AuthBase
from ngsildclient import Client, Entity


class ApiKey(AuthBase):
    def __call__(self, request):
        request.headers["Authorization"] = "Bearer " + sys.argv[2]
        return request


out = {}
with Client(hostname="127.0.0.1", port=int(sys.argv[1]), custom_auth=ApiKey()) as client:
    manhole = Entity("Manhole", "wuyi-001")
    manhole.prop("tiltAngle", 3.5).gprop("location", (28.19, 112.97))
    client.create(manhole)
    got = client.get("urn:ngsi-ld:Manhole:wuyi-001")
    out["got"] = got.to_dict()
    out["count"] = client.count(type="Manhole")
    tilted = Entity("Manhole", "wuyi-002")
    tilted.prop("tiltAngle", 20.0)
    level = Entity("Manhole", "wuyi-003")
    level.prop("tiltAngle", 1.0)
    result = client.upsert([tilted, level])
    out["upsert_ok"] = bool(result.ok) if hasattr(result, "ok") else bool(result)
    out["query"] = sorted(e.id for e in client.query(type="Manhole", q="tiltAngle>10"))
    client.delete(manhole)
    out["exists_after_delete"] = client.exists(manhole)
print("RESULT " + json.dumps(out))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(city: City, tmp_path: Path) -> Iterator[int]:
    port = _free_port()
    env = {**os.environ, "WECITY_DATABASE_URL": city.settings.database_url, "WECITY_SECRET_KEY": "s" * 40,
           "WECITY_VAR_DIR": str(tmp_path), "WECITY_MEDIA_DIR": str(tmp_path / "media")}
    log = open(tmp_path / "server.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([sys.executable, "-m", "wecity", "serve", "--host", "127.0.0.1", "--port", str(port),
                             "--no-migrate", "--no-runner"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert proc.poll() is None, (tmp_path / "server.log").read_text()[-2000:]
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()


def test_ngsildclient_against_a_running_server(server: int, city: City, tmp_path: Path) -> None:
    if not CLIENT_PYTHON.exists():
        pytest.skip(f"ngsildclient's own environment is missing at {CLIENT_PYTHON.parent.parent}"
                    " (make ngsild-client creates it)")
    script = tmp_path / "client.py"
    script.write_text(SCRIPT)
    done = subprocess.run([str(CLIENT_PYTHON), str(script), str(server), city.api_key], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))
    out = json.loads(line[len("RESULT "):])
    assert out["got"]["id"] == "urn:ngsi-ld:Manhole:wuyi-001"
    assert out["got"]["tiltAngle"] == {"type": "Property", "value": 3.5}
    assert out["got"]["location"]["value"] == {"type": "Point", "coordinates": [112.97, 28.19]}
    assert out["count"] == 1
    assert out["upsert_ok"] is True
    assert out["query"] == ["urn:ngsi-ld:Manhole:wuyi-002"]
    assert out["exists_after_delete"] is False
    # Without the key the same server turns the client away (WECITY_NGSILD_AUTH defaults to "required").
    assert httpx.get(f"http://127.0.0.1:{server}/ngsi-ld/v1/entities?type=Manhole").status_code == 401

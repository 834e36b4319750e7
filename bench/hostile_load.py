"""/healthz on a live `wecity serve` while seven 64-megapixel uploads and a ReDoS-shaped query run.

Not a throughput benchmark (`bench.run` skips it: it has no `run`); run it alone to check that hostile
requests cannot stall the platform (docs/security.md):

    .venv/bin/python -m bench.hostile_load

It makes a demo city in a temporary directory, serves it, and polls /healthz with curl from a process of
its own while the uploads and the query are in flight (a poller inside this process would measure this
process's own threads as well).
"""

from __future__ import annotations

import io
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from PIL import Image

UPLOADS = 7
PIXELS = (8000, 8000)  # 64 megapixels


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(tmp: Path) -> tuple[subprocess.Popen[bytes], str, dict[str, str]]:
    from wecity.core.settings import load_settings
    from wecity.demo.database import create_demo_database

    env = {**os.environ, "WECITY_DATABASE_URL": f"sqlite:///{tmp / 'city.db'}", "WECITY_SECRET_KEY": "k" * 40,
           "WECITY_VAR_DIR": str(tmp), "WECITY_MEDIA_DIR": str(tmp / "media"), "WECITY_RATE_LIMIT_OPEN311": "off"}
    os.environ.update(env)
    keys = create_demo_database(load_settings(), history=False)
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "wecity", "serve", "--port", str(port), "--no-migrate",
                             "--no-runner"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            if httpx.get(base + "/healthz").status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    return proc, base, keys


def main() -> None:
    tmp = Path(tempfile.mkdtemp())
    proc, base, keys = _serve(tmp)
    buffer = io.BytesIO()
    Image.new("RGB", PIXELS, (200, 30, 30)).save(buffer, "PNG")
    png = buffer.getvalue()
    sensors = {"Authorization": f"Bearer {keys['sensors']}"}
    httpx.post(base + "/ngsi-ld/v1/entities", headers=sensors, json={
        "id": "urn:ngsi-ld:T:1", "type": "T", "name": {"type": "Property", "value": "a" * 28 + "!"}}).raise_for_status()
    results: dict[str, Any] = {}

    def upload(n: int) -> None:
        answer = httpx.post(base + "/open311/v2/requests.json", timeout=120, files={"media": ("a.png", png, "image/png")},
                            data={"api_key": keys["open311"], "service_code": "pothole", "lat": "28.19567",
                                  "long": "112.9717"})
        results[f"upload {n}"] = answer.status_code

    def redos() -> None:
        started = time.perf_counter()
        answer = httpx.get(base + "/ngsi-ld/v1/entities", params={"type": "T", "q": 'name~="^(a+)+$"'},
                           headers=sensors, timeout=120)
        results["redos"] = (answer.status_code, round((time.perf_counter() - started) * 1000, 1))

    workers = [threading.Thread(target=upload, args=(n,)) for n in range(UPLOADS)] + [threading.Thread(target=redos)]
    poller = subprocess.Popen(["bash", "-c", "while true; do curl -s -o /dev/null -w '%{time_total}\\n' "
                               f"{base}/healthz; sleep 0.05; done"], stdout=subprocess.PIPE, text=True)
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    poller.terminate()
    out, _ = poller.communicate()
    proc.terminate()
    proc.wait()
    shutil.rmtree(tmp, ignore_errors=True)
    latencies = [float(x) * 1000 for x in out.split() if x.strip()]
    print(results)
    print(f"/healthz during the load: n={len(latencies)} median {statistics.median(latencies):.1f} ms, "
          f"max {max(latencies):.1f} ms")


if __name__ == "__main__":
    main()

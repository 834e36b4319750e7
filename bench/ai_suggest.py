"""Category suggestion latency: POST /api/v1/ai/suggest as the report form sends it while a citizen types
(goal: p99 < 50 ms), beside what no server can beat.

The demo city with its 30 days of history and the model its seeding trains (`wecity serve`, SQLite). One
client sends 2,000 suggestions one after another (keep-alive), each a different text: the demo's report
texts with a street name before them, cut at a random length as if typed so far, and some English. The
latency is the client's, request sent to answer parsed. Beside it:

- the HTTP floor: the bare ASGI app under uvicorn answering the same requests, the same way;
- the model floor: `top_k` on the same texts in-process, the model loaded (what the answer costs to compute).

The ceiling shown is their sum at the same percentile (a bound no server doing the work can beat by much).
"""

from __future__ import annotations

import random
import statistics
import time
from pathlib import Path
from typing import Any

from bench._common import free_port, make_demo_city, row, uvicorn_server, wecity_server, workdir

REQUESTS = 2000
GOAL = "< 50 ms"
PLACES = ["五一大道", "解放西路", "岳麓大道", "芙蓉中路", "韶山北路", "湘江中路", "东塘", "侯家塘"]
ENGLISH = ["the streetlight outside my building is out", "a big pothole in the road", "rubbish piled up on the corner",
           "cars parked on the pavement", "loud music at night", "manhole cover missing", "sewage overflowing"]


def _texts(n: int, seed: int = 7) -> list[str]:
    from wecity.demo.history import REPORTS

    rng = random.Random(seed)
    pool = [t for _, texts in REPORTS.values() for t in texts]
    out = []
    for i in range(n):
        if i % 5 == 4:
            text = rng.choice(ENGLISH)
        else:
            text = rng.choice(PLACES) + rng.choice(pool)
        out.append(text[:max(2, rng.randint(len(text) // 2, len(text)))] + f" {i}" * (i % 3 == 0))
    return out


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def _timed_posts(client: Any, path: str, texts: list[str]) -> list[float]:
    out = []
    for text in texts:
        start = time.perf_counter()
        response = client.post(path, json={"description": text, "k": 3})
        response.raise_for_status()
        response.json()
        out.append((time.perf_counter() - start) * 1000)
    return out


def run() -> list[dict[str, Any]]:
    import httpx
    import sqlalchemy as sa

    from wecity.ai.training import load_model, serving

    texts = _texts(REQUESTS)
    with workdir("ai-suggest") as tmp:
        city = make_demo_city(tmp, history=True)
        engine = sa.create_engine(city.url)
        with engine.connect() as conn:
            current = serving(conn)
        engine.dispose()
        if current is None:
            raise RuntimeError("the demo city has no category model")
        model = load_model(Path(tmp), current)
        model.top_k(texts[:20], k=3)  # warm
        model_ms = []
        for text in texts:
            start = time.perf_counter()
            model.top_k([text], k=3)
            model_ms.append((time.perf_counter() - start) * 1000)
        env = {**city.env, "WECITY_RATE_LIMIT_AI_SUGGEST": "1000000000/minute"}
        with wecity_server(port=free_port(), env=env, log_path=tmp / "server.log", runner=False) as server, \
                httpx.Client(base_url=server.url, timeout=30) as client:
            _timed_posts(client, "/api/v1/ai/suggest", texts[:50])  # warm: the model is loaded on first use
            api_ms = _timed_posts(client, "/api/v1/ai/suggest", texts)
        with uvicorn_server("bench._apps:bare", port=free_port(), log_path=tmp / "bare.log", env={}) as bare, \
                httpx.Client(base_url=bare.url, timeout=30) as client:
            _timed_posts(client, "/", texts[:50])
            bare_ms = _timed_posts(client, "/", texts)
    api50, api99 = _percentiles(api_ms)
    bare50, bare99 = _percentiles(bare_ms)
    model50, model99 = _percentiles(model_ms)
    return [row("Category suggestion, POST /api/v1/ai/suggest, p99 (wecity serve, SQLite)", api99, "ms",
                ceiling=bare99 + model99, ceiling_unit="ms", goal=GOAL,
                note=(f"{REQUESTS:,} sequential requests, each a different text; p50 {api50:.1f} ms, p99 {api99:.1f} ms; "
                      f"model v{current.version} ({len(model.classes_)} categories). Ceiling: the bare ASGI app's p99 "
                      f"({bare99:.2f} ms, p50 {bare50:.2f}) plus the model's own top_k p99 in-process ({model99:.2f} ms, "
                      f"p50 {model50:.2f})"))]


def main() -> None:
    from bench.run import print_rows

    print_rows(run())


if __name__ == "__main__":
    main()

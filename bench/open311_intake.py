"""Open311 intake on the embedded default: POST /open311/v2/requests.json to `wecity serve` on SQLite."""

from __future__ import annotations

from typing import Any

from bench import ceilings
from bench._common import free_port, make_demo_city, run_wrk, wecity_server, workdir
from bench._open311 import (
    category_codes,
    count_reports,
    first_request,
    profiled_load,
    result_rows,
    unavailable_rows,
)
from bench._scripts import open311_post


def run() -> list[dict[str, Any]]:
    label = "wecity serve, SQLite"
    with workdir("open311") as tmp:
        city = make_demo_city(tmp)
        codes = category_codes(city.url)
        before = count_reports(city.url)
        # The embedded default: one process with its background runner, as `wecity serve` starts.
        with wecity_server(port=free_port(), env=city.env, log_path=tmp / "server.log") as server:
            problem = first_request(server.url, city, codes[0])
            if problem:
                return unavailable_rows(label, problem)
            warm = run_wrk(server.url, open311_post(city.api_key, codes), duration=1)
            result = run_wrk(server.url, open311_post(city.api_key, codes))
            assert server.proc is not None
            profiled, profile_ok = profiled_load(server.url, server.proc.pid, open311_post(city.api_key, codes))
        stored = count_reports(city.url) - before
    ceiling = ceilings.starlette_insert()
    normal = ceilings.starlette_insert_normal()
    bare = ceilings.bare_asgi_post()
    extra = (f"; one process with its background runner (the embedded default); (b') without fsync per"
             f" commit: {normal.rps:,.0f} req/s; (a) bare ASGI with the same bodies: {bare.rps:,.0f} req/s")
    return result_rows(label, result, ceiling, "(b) Starlette + 1 SQLite insert/request", stored=stored,
                       acknowledged=1 + warm.ok + result.ok + profile_ok,
                       extra=extra + (f"; {profiled}" if profiled else ""))


def main() -> None:
    from bench.run import print_rows

    print_rows(run())


if __name__ == "__main__":
    main()

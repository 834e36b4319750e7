"""The service loop under load, on the embedded default (`wecity serve` on SQLite, the demo city):

- catalogue search: GET /api/v1/matters?q=… with rotating terms, its p99 beside the bare ASGI app's;
- applications: POST /api/v1/applications that applies in one call (pre-fill from the registers and the
  wallet, the form checked with jsonschema, the BPMN process started, the timeline, the audit entry and the
  department's notice, in one transaction), per second beside Starlette + 1 SQLite insert (the intake
  ceiling). Every acknowledged application is counted in the database afterwards.
"""

from __future__ import annotations

import json
import sqlite3
import time
from typing import Any
from urllib.parse import quote

from bench import ceilings
from bench._common import free_port, lua_string, make_demo_city, row, run_wrk, wecity_server, workdir

# The load comes from a few citizens at thousands of requests a second: the limits are raised, not
# switched off, so each request still pays for its check.
LIMITS = {"WECITY_RATE_LIMIT_SERVICES_READ": "1000000000/minute",
          "WECITY_RATE_LIMIT_SERVICES_WRITE": "1000000000/minute"}
TERMS = ["许可", "登记", "广告", "道路", "住房", "licence", "permit", "CS-CGZF", "排水", "食品"]
CITIZENS = ["13900000001", "13900000002", "13900000003", "13900000004", "13900000005", "13900000006"]
MATTER = "BENCH-APPLY"
# A matter of the demo's shape whose only material the resident ID in every demo citizen's wallet replaces,
# so that one call can apply: four fields pre-filled (register and wallet), two answered, parallel review.
BENCH_MATTER: dict[str, Any] = {
    "code": MATTER, "name_zh": "居住登记（压测）", "name_en": "Residence registration (benchmark)",
    "department": "gongan", "legal_basis_zh": "《居住证暂行条例》", "legal_limit_days": 15, "promised_limit_days": 5,
    "uncounted_steps": [], "applicants": ["citizen"], "online_level": "full_online", "fees": [],
    "process": "standard", "reviewers": ["minzheng", "zhujian"],
    "materials": [{"code": "id_card", "name_zh": "居民身份证", "required": True, "replaced_by": "certificate:resident_id"}],
    "form": {"type": "object", "required": ["name", "id_number", "address", "basis"], "additionalProperties": False,
             "properties": {
                 "name": {"type": "string", "title": "姓名", "maxLength": 50,
                          "x-prefill": {"source": "profile", "field": "name"}},
                 "id_number": {"type": "string", "title": "身份证号码", "maxLength": 18, "pattern": "^\\d{17}[\\dXx]$",
                               "x-prefill": {"source": "certificate", "type": "resident_id", "field": "id_number"}},
                 "phone": {"type": "string", "title": "联系电话", "maxLength": 11, "pattern": "^1[3-9]\\d{9}$",
                           "x-prefill": {"source": "profile", "field": "phone"}},
                 "address": {"type": "string", "title": "居住地址", "maxLength": 120,
                             "x-prefill": {"source": "certificate", "type": "resident_id", "field": "address"}},
                 "basis": {"type": "string", "title": "居住事由", "enum": ["employment", "study", "family"]},
                 "employer_or_school": {"type": "string", "title": "工作单位或学校", "maxLength": 100}}},
    "certificate": None,
}
# ASCII JSON (Chinese as \u escapes), so that it is also a valid Lua string literal for wrk.
BODY = json.dumps({"matter_code": MATTER, "submit": True,
                   "form_data": {"basis": "employment", "employer_or_school": "长沙某科技有限公司"}})
GOAL_SEARCH_P99 = "< 50 ms"
GOAL_APPLY = ">= 200"


def search_get() -> str:
    # Percent-encoded here, so that the Lua script holds ASCII only.
    paths = "{" + ",".join(lua_string("/api/v1/matters?q=" + quote(t)) for t in TERMS) + "}"
    return f"""
local paths = {paths}
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", paths[(i % #paths) + 1])
end
"""


def apply_post(tokens: list[str]) -> str:
    auth = "{" + ",".join(lua_string(f"Bearer {t}") for t in tokens) + "}"
    return f"""
local auth = {auth}
local body = {lua_string(BODY)}
local i = 0
request = function()
  i = i + 1
  return wrk.format("POST", "/api/v1/applications",
    {{["Content-Type"] = "application/json", ["Authorization"] = auth[(i % #auth) + 1]}}, body)
end
"""


def _add_matter(url: str) -> None:
    from wecity.core.clock import Clock
    from wecity.core.db import Database
    from wecity.govservice.catalogue import import_catalogue

    db = Database(url, pool_size=1)
    try:
        db.write_sync(lambda conn: import_catalogue(conn, {"format": "wecity-matters/1", "matters": [BENCH_MATTER]},
                                                    now=Clock().now()))
    finally:
        db.close()


def _count(db: str) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT count(*) FROM applications WHERE submitted_at IS NOT NULL").fetchone()[0])


def run() -> list[dict[str, Any]]:
    from wecity.identity.applicants import sign_citizen

    with workdir("govservice") as tmp:
        city = make_demo_city(tmp)
        _add_matter(city.url)
        env = {**city.env, **LIMITS}
        secret = env["WECITY_SECRET_KEY"]
        tokens = [sign_citizen(secret, phone, int(time.time()) + 3600) for phone in CITIZENS]
        db = city.url.split("///", 1)[1]
        with wecity_server(port=free_port(), env=env, log_path=tmp / "server.log") as server:
            import httpx

            probe = httpx.post(server.url + "/api/v1/applications", headers={"Authorization": f"Bearer {tokens[0]}", "Content-Type": "application/json"},
                               content=BODY.encode(), timeout=10)
            if probe.status_code != 201 or probe.json()["status"] != "submitted":
                return [row("Apply in one call (wecity serve, SQLite)", None, "req/s",
                            note=f"unavailable: {probe.status_code} {probe.text[:300]}")]
            run_wrk(server.url, search_get(), duration=1)
            search = run_wrk(server.url, search_get())
            before = _count(db)
            run_wrk(server.url, apply_post(tokens), duration=1)
            warm_stored = _count(db) - before
            before = _count(db)
            applied = run_wrk(server.url, apply_post(tokens))
            stored = _count(db) - before
    bare = ceilings.bare_asgi_get()
    insert = ceilings.starlette_insert()
    check = (f"{stored} of {applied.ok} acknowledged applications found submitted in the database"
             f" (warm-up: {warm_stored})")
    rows = [
        row("Catalogue search p99 (wecity serve, SQLite)", search.p99_ms, "ms", ceiling=bare.p99_ms,
            ceiling_unit="ms", goal=GOAL_SEARCH_P99,
            note=f"{search.describe()}, {search.rps:,.0f} req/s; ceiling: p99 of (a) the bare ASGI app"),
        row("Apply in one call, submitted (wecity serve, SQLite)", applied.rps, "req/s", ceiling=insert.rps,
            ceiling_unit="req/s", goal=GOAL_APPLY,
            note=f"{applied.describe()}; {check}; ceiling: (b) Starlette + 1 SQLite insert/request"),
    ]
    if stored < applied.ok or applied.errors:
        rows[1]["met"] = False
    return rows


def main() -> None:
    from bench.run import print_rows

    print_rows(run())


if __name__ == "__main__":
    main()

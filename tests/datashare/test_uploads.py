"""Uploaded tables: a department replaces the rows of its own uploaded-table dataset with a CSV (UTF-8 or
GB18030, columns by name or title) or an XLSX file; a bad file changes nothing and says what is wrong
where; other departments may not upload; the data API serves what was uploaded."""

from __future__ import annotations

import io

from openpyxl import Workbook

from ..conftest import City, make_client
from ..web.conftest import csrf_token, log_in
from .test_sharing_pages import _session_token

CSV_HEAD = "问题类别代码,问题类别,问题类别（英文）,责任部门,签收时限（分钟）,办结时限（小时）\n"


def _post(client, city: City, user: str, content: bytes, filename: str):  # noqa: ANN001, ANN202
    return client.post("/api/v1/datasets/service-standards/rows", files={"file": (filename, content)},
                       headers={"Authorization": "Bearer " + _session_token(city, user)})


def test_csv_in_either_encoding_and_xlsx_replace_the_rows(catalogued: City) -> None:
    city = catalogued
    with make_client(city) as client:
        seeded = client.get("/api/v1/data/service-standards").json()
        assert seeded["count"] >= 10 and seeded["rows"][0]["ack_minutes"] > 0  # the demo's upload
        gbk = (CSV_HEAD + "manhole,井盖缺失,Missing manhole cover,chengguan,30,4\n").encode("gb18030")
        answer = _post(client, city, "dispatcher", gbk, "标准.csv")
        assert answer.status_code == 200, answer.text
        assert answer.json()["rows"] == 1
        rows = client.get("/api/v1/data/service-standards").json()["rows"]
        assert rows == [{"category": "manhole", "category_zh": "井盖缺失", "category_en": "Missing manhole cover",
                         "department": "chengguan", "ack_minutes": 30, "resolve_hours": 4}]

        book = Workbook()
        sheet = book.active
        sheet.append(["category", "category_zh", "resolve_hours", "ack_minutes"])  # by name, any order, one missing
        sheet.append(["pothole", "道路坑洼", 48, 60.0])
        sheet.append([None, None, None, None])  # the blank row spreadsheets leave
        sheet.append(["streetlight", "路灯不亮", 24, 30])
        buffer = io.BytesIO()
        book.save(buffer)
        assert _post(client, city, "dispatcher", buffer.getvalue(), "standards.xlsx").json()["rows"] == 2
        rows = client.get("/api/v1/data/service-standards").json()["rows"]
        assert [(r["category"], r["ack_minutes"], r["resolve_hours"], r["department"]) for r in rows] == [
            ("pothole", 60, 48, None), ("streetlight", 30, 24, None)]


def test_a_bad_table_changes_nothing_and_says_where_and_others_may_not_upload(catalogued: City) -> None:
    city = catalogued
    with make_client(city) as client:
        before = client.get("/api/v1/data/service-standards").json()["rows"]
        bad = (CSV_HEAD + "manhole,井盖缺失,Missing cover,chengguan,半小时,4\npothole,坑洼,Pothole,zhujian,30,x\n")
        refused = _post(client, city, "dispatcher", bad.encode("utf-8"), "s.csv")
        assert refused.status_code == 400 and refused.json()["code"] == "datashare.upload_invalid"
        assert refused.json()["details"]["errors"] == ["row 2, ack_minutes: '半小时' is not an integer",
                                                       "row 3, resolve_hours: 'x' is not an integer"]
        assert refused.json()["details"]["errors_zh"][0].startswith("第 2 行，") and "不是整数" in refused.json()["title"]
        unknown = _post(client, city, "dispatcher", b"category,colour\nmanhole,red\n", "s.csv")
        assert unknown.status_code == 400 and "colour" in unknown.text
        assert _post(client, city, "dispatcher", b"PK\x03\x04 not really", "s.xlsx").status_code == 400
        assert _post(client, city, "chengguan", CSV_HEAD.encode(), "s.csv").status_code == 403
        other = client.post("/api/v1/datasets/city-cases/rows", files={"file": ("s.csv", b"case_id\n1\n")},
                            headers={"Authorization": "Bearer " + _session_token(city, "dispatcher")})
        assert other.status_code == 400 and other.json()["code"] == "datashare.not_uploaded"
        assert client.post("/api/v1/datasets/service-standards/rows", files={"file": ("s.csv", b"x")}).status_code == 401
        assert client.get("/api/v1/data/service-standards").json()["rows"] == before


def test_the_publisher_uploads_from_the_dataset_page(catalogued: City) -> None:
    with make_client(catalogued) as client:
        log_in(client, "dispatcher")
        page = client.get("/data/service-standards", headers={"Accept-Language": "en"}).text
        assert 'id="upload-form"' in page
        done = client.post("/data/service-standards/rows", data={"csrf_token": csrf_token(page)}, follow_redirects=False,
                           files={"file": ("s.csv", (CSV_HEAD + "manhole,井盖,Cover,chengguan,30,4\n").encode())})
        assert done.status_code == 303 and done.headers["location"] == "/data/service-standards?uploaded=1"
        assert 'id="uploaded"' in client.get(done.headers["location"], headers={"Accept-Language": "en"}).text
    with make_client(catalogued) as other:
        log_in(other, "chengguan")
        page = other.get("/data/service-standards").text
        assert 'id="upload-form"' not in page
        refused = other.post("/data/service-standards/rows", data={"csrf_token": csrf_token(page)},
                             files={"file": ("s.csv", CSV_HEAD.encode())})
        assert refused.status_code == 403  # before the file is read


def test_a_date_and_time_without_offset_is_the_city_s_local_time() -> None:
    from zoneinfo import ZoneInfo

    from wecity.datashare.uploads import parse_rows

    d = {"name": "inspections", "fields": [{"name": "at", "title_zh": "检查时间", "title_en": "Inspected at",
                                             "type": "datetime"}]}
    rows = parse_rows(d, [["检查时间"], ["2026-03-01 09:00"], ["2026-03-01T09:00:00+00:00"]],
                      zone=ZoneInfo("Asia/Shanghai"))
    assert [r["at"] for r in rows] == ["2026-03-01T01:00:00.000Z", "2026-03-01T09:00:00.000Z"]


def test_a_csv_cell_longer_than_the_csv_reader_takes_is_a_400_saying_so(catalogued: City) -> None:
    city = catalogued
    huge = (CSV_HEAD + "manhole," + "井" * 140_000 + ",Cover,chengguan,30,4\n").encode("utf-8")
    with make_client(city) as client:
        refused = _post(client, city, "dispatcher", huge, "s.csv")
        assert refused.status_code == 400 and refused.json()["code"] == "datashare.upload_invalid", refused.text
        assert "KiB" in refused.json()["title"]
        log_in(client, "dispatcher")
        page = client.get("/data/service-standards", headers={"Accept-Language": "en"}).text
        shown = client.post("/data/service-standards/rows", data={"csrf_token": csrf_token(page)},
                            files={"file": ("s.csv", huge)}, headers={"Accept-Language": "en"})
        assert shown.status_code == 400 and "KiB" in shown.text

"""Errors of the data platform in the caller's language, naming what is wrong in words of that language."""

from __future__ import annotations

from ..conftest import City, make_client
from .test_sharing import _staff

ZH, EN = {"Accept-Language": "zh-CN"}, {"Accept-Language": "en"}


def test_a_filter_of_the_wrong_type_is_named_in_chinese_and_english(catalogued: City) -> None:
    with make_client(catalogued) as client:
        dispatcher = _staff(catalogued, "dispatcher")
        zh = client.get("/api/v1/data/city-cases", params={"case_id": "abc"}, headers={**dispatcher, **ZH})
        assert zh.status_code == 400 and zh.json()["code"] == "datashare.bad_filter"
        assert "整数" in zh.json()["title"] and "integer" not in zh.json()["title"]
        en = client.get("/api/v1/data/city-cases", params={"case_id": "abc"}, headers={**dispatcher, **EN})
        assert "is not an integer" in en.json()["title"]


def test_a_request_missing_parts_names_those_parts_only_in_both_languages(catalogued: City) -> None:
    with make_client(catalogued) as client:
        zhujian = _staff(catalogued, "zhujian")
        body = {"dataset": "city-cases", "fields": ["case_id"]}
        zh = client.post("/api/v1/data-requests", json=body, headers={**zhujian, **ZH}).json()
        assert zh["title"] == "请填写：用途、使用期限（天）。"
        en = client.post("/api/v1/data-requests", json=body, headers={**zhujian, **EN}).json()
        assert en["title"] == "Fill in the purpose, the number of days."


def test_ckan_errors_come_in_the_caller_s_language(catalogued: City) -> None:
    with make_client(catalogued) as client:
        zh = client.get("/api/3/action/package_show", params={"id": "no-such"}, headers=ZH).json()
        en = client.get("/api/3/action/package_show", params={"id": "no-such"}, headers=EN).json()
        assert zh["error"]["message"] == "Not Found Error: 数据集 no-such 不存在"
        assert en["error"]["message"] == "Not Found Error: no dataset no-such"


def test_a_decision_missing_or_unknown_is_named_in_both_languages(catalogued: City) -> None:
    import pytest
    import sqlalchemy as sa

    from wecity.core.errors import ValidationFailed
    from wecity.datashare import requests
    from wecity.identity.models import users
    from wecity.identity.service import get_user

    from ..web.conftest import csrf_token, log_in
    from .test_sharing import ASKED

    city = catalogued
    with make_client(city) as client:
        made = client.post("/api/v1/data-requests", json=ASKED, headers=_staff(city, "zhujian"))
    request_id = made.json()["id"]
    supervisor = city.db.read_sync(lambda c: get_user(c, c.execute(sa.select(users.c.id).where(
        users.c.username == "supervisor")).scalar_one()))
    assert supervisor is not None
    with pytest.raises(ValidationFailed) as missing:
        city.db.write_sync(lambda c: requests.decide(c, request_id, supervisor, {"reasons": "x"}, now=city.clock.now()))
    assert (missing.value.message_zh, missing.value.message) == ("请填写：决定。", "Fill in the decision.")
    with make_client(city) as page:
        log_in(page, "supervisor")
        path = f"/sharing/requests/{request_id}"
        token = csrf_token(page.get(path, headers=ZH).text)
        unknown = page.post(f"{path}/decide", headers=ZH, data={"csrf_token": token, "decision": "", "reasons": "x"})
        assert unknown.status_code == 400 and "决定须为同意（grant）或拒绝（refuse）。" in unknown.text
        assert "is not one of" not in unknown.text
        en = page.post(f"{path}/decide", headers=EN, data={"csrf_token": token, "decision": "", "reasons": "x"})
        assert "The decision is grant or refuse." in en.text


def test_a_csv_file_that_cannot_be_read_says_why_in_each_language() -> None:
    import csv

    import pytest

    from wecity.core.errors import ValidationFailed
    from wecity.core.tables import read_table

    kib = csv.field_size_limit() // 1024
    for content, zh, en in ((b"name\n" + b"x" * (kib * 1024 + 1), f"有单元格超过 {kib} KiB", f"a cell is longer than {kib} KiB"),
                            (b"name,value\nab\rcd,1\n", "有单元格含换行符但未用双引号括起", "line break")):
        with pytest.raises(ValidationFailed) as refused:
            read_table(content, "t.csv", max_rows=10, code="datashare.upload_invalid")
        assert zh in refused.value.message_zh and en in refused.value.message
        assert not any(c.isascii() and c.isalpha() for c in refused.value.message_zh.replace("CSV", "").replace("KiB", ""))

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

"""POST and GET service requests: routing, errors, privacy, filters, and a real Open311 client."""

import xml.etree.ElementTree as ET
from datetime import timedelta

import pytest

from wecity.cases.categories import set_area_department
from wecity.cases.models import cases, reports
from wecity.geo.coords import from_wgs84

from ..conftest import City, make_client
from .conftest import validate

WUYI_SQUARE = (28.1960, 112.9770)     # 芙蓉区
YUELU_MOUNTAIN = (28.1870, 112.9370)  # 岳麓区


def post(client, city: City, fmt: str = "json", **fields: object):  # noqa: ANN001, ANN201
    data = {"api_key": city.api_key, "service_code": "pothole", "lat": WUYI_SQUARE[0], "long": WUYI_SQUARE[1],
            "description": "路面有个大坑"}
    data.update(fields)
    return client.post(f"/open311/v2/requests.{fmt}", data={k: v for k, v in data.items() if v is not None})


def test_create_routes_to_the_department_and_sets_expected_time(city: City) -> None:
    with make_client(city) as client:
        response = post(client, city, service_code="manhole", **{"attribute[cover_state]": "missing"})
        assert response.status_code == 200, response.text
        created = response.json()
        assert set(created[0]) == {"service_request_id", "token", "service_notice", "account_id"}
        rid = created[0]["service_request_id"]
        request = client.get(f"/open311/v2/requests/{rid}.json").json()
    validate("requests.json", request)
    entry = request[0]
    assert entry["status"] == "open"
    assert entry["agency_responsible"] == "市城市管理和综合执法局"
    assert entry["service_name"] == "井盖缺失/破损"
    assert entry["requested_datetime"].endswith("+08:00")
    # 井盖: resolve within 4 hours around the clock.
    from datetime import datetime

    assert (datetime.fromisoformat(entry["expected_datetime"]) - datetime.fromisoformat(entry["requested_datetime"])
            == timedelta(hours=4))
    case = city.db.read_sync(lambda c: c.execute(cases.select()).one())
    assert case.area_id is not None and case.status == "dispatched"


def test_category_times_area_override_routes_to_the_district_department(city: City) -> None:
    index_area = city.db.read_sync(lambda c: c.exec_driver_sql("SELECT id FROM areas WHERE name_zh = '岳麓区'").scalar())
    city.db.write_sync(lambda c: set_area_department(c, category_code="pothole", area_id=index_area,
                                                     department_code="jiaotong"))
    with make_client(city) as client:
        yuelu = post(client, city, lat=YUELU_MOUNTAIN[0], long=YUELU_MOUNTAIN[1]).json()[0]["service_request_id"]
        furong = post(client, city).json()[0]["service_request_id"]
        assert client.get(f"/open311/v2/requests/{yuelu}.json").json()[0]["agency_responsible"] == "市交通运输局"
        assert client.get(f"/open311/v2/requests/{furong}.json").json()[0]["agency_responsible"] == "市住房和城乡建设局"


@pytest.mark.parametrize("system", ["gcj02", "bd09"])
def test_chinese_map_coordinates_are_converted(sqlite_city: City, system: str) -> None:
    lat, lon = from_wgs84(*WUYI_SQUARE, system)
    with make_client(sqlite_city) as client:
        rid = post(client, sqlite_city, lat=lat, long=lon, coord_system=system).json()[0]["service_request_id"]
        entry = client.get(f"/open311/v2/requests/{rid}.json").json()[0]
    assert abs(entry["lat"] - WUYI_SQUARE[0]) < 1e-5 and abs(entry["long"] - WUYI_SQUARE[1]) < 1e-5


@pytest.mark.parametrize("fmt", ["json", "xml"])
@pytest.mark.parametrize(("fields", "status", "says"), [
    ({"api_key": None}, 403, "api_key"),
    ({"api_key": "wk_not-a-real-key"}, 403, "api_key"),
    ({"service_code": None}, 400, "service_code"),
    ({"service_code": "unicorns"}, 400, "unicorns"),
    ({"lat": None, "long": None}, 400, "location"),
    ({"long": None}, 400, "together"),
    ({"lat": "north"}, 400, "number"),
    ({"lat": 95}, 400, "-90"),
    ({"lat": 39.9042, "long": 116.4074}, 400, "outside"),
    ({"coord_system": "mars"}, 400, "coord_system"),
    ({"description": "x" * 4001}, 400, "4000"),
    ({"service_code": "manhole"}, 400, "cover_state"),
    ({"service_code": "manhole", "attribute[cover_state]": "stolen"}, 400, "cover_state"),
    ({"attribute[colour]": "red"}, 400, "colour"),
    # One address and one number, as the portal takes them: a list becomes several recipients, a line break
    # a header the message cannot be built with.
    ({"email": "victim1@example.com, victim2@example.org"}, 400, "email"),
    ({"email": "a@example.com,b"}, 400, "email"),
    ({"email": "a@example.com\r\nBcc: z@example.com"}, 400, "email"),
    ({"phone": "not a phone; call 110"}, 400, "phone"),
    ({"phone": "13912345678\r\n13812345678"}, 400, "phone"),
])
def test_create_errors(city: City, fmt: str, fields: dict, status: int, says: str) -> None:
    with make_client(city) as client:
        response = post(client, city, fmt, **fields)
    assert response.status_code == status, response.text
    if fmt == "json":
        error = response.json()[0]
        assert error["code"] == status and says in error["description"]
    else:
        root = ET.fromstring(response.content)
        assert root.findtext("error/code") == str(status) and says in root.findtext("error/description")
    assert city.db.read_sync(lambda c: c.execute(reports.select()).all()) == []
    assert city.db.read_sync(lambda c: c.execute(cases.select()).all()) == []


def test_address_only_report_is_accepted(sqlite_city: City) -> None:
    with make_client(sqlite_city) as client:
        response = post(sqlite_city and client, sqlite_city, lat=None, long=None, address_string="五一大道 1 号")
        assert response.status_code == 200
        entry = client.get(f"/open311/v2/requests/{response.json()[0]['service_request_id']}.json").json()[0]
    assert entry["address"] == "五一大道 1 号" and entry["lat"] is None


def test_xml_create_response(sqlite_city: City) -> None:
    with make_client(sqlite_city) as client:
        root = ET.fromstring(post(client, sqlite_city, "xml").content)
    assert root.tag == "service_requests"
    assert root.findtext("request/service_request_id") == "1"
    assert root.find("request/account_id") is not None


def test_control_characters_in_a_description_keep_the_xml_list_well_formed(city: City) -> None:
    with make_client(city) as client:
        assert post(client, city, description="井盖\x01\x0b松动 <旁边> & 有积水").status_code == 200
        response = client.get("/open311/v2/requests.xml")
    root = ET.fromstring(response.content)  # expat refuses any character XML 1.0 forbids
    description = root.findtext("request/description")
    assert description.startswith("井盖") and description.endswith("松动 <旁边> & 有积水")
    assert "\x01" not in description and "\x0b" not in description


def test_xml_text_replaces_every_character_xml_forbids() -> None:
    from wecity.open311.render import xml_text

    assert xml_text("a\x00b\x1fc\ud800d\ufffee\tf\ng") == "a\ufffdb\ufffdc\ufffdd\ufffde\tf\ng"
    assert xml_text("𠀀 <&>") == "𠀀 &lt;&amp;&gt;"


def test_personal_data_is_never_in_public_output(city: City) -> None:
    with make_client(city) as client:
        rid = post(client, city, email="citizen@example.cn", phone="13912345678", first_name="小明",
                   last_name="王", device_id="device-xyz", account_id="acct-1").json()[0]["service_request_id"]
        outputs = [client.get(f"/open311/v2/requests/{rid}.{f}?extensions=true").text for f in ("json", "xml")]
        outputs += [client.get(f"/open311/v2/requests.{f}?extensions=true").text for f in ("json", "xml")]
        outputs += [client.get(f"/open311/v2/servicerequestupdates.{f}").text for f in ("json", "xml")]
    for text in outputs:
        for secret in ("citizen@example.cn", "13912345678", "小明", "device-xyz"):
            assert secret not in text


def test_an_enterprises_complaints_are_not_published(city: City) -> None:
    """诉求 of an enterprise name it (its address) and what it complains of: GeoReport publishes the categories
    offered in services.json, filed through a public channel."""
    from wecity.cases.categories import add_category
    from wecity.cases.choices import Channel
    from wecity.cases.intake import NewReport, submit_report
    from wecity.geo.service import load_area_index

    def file(conn, code: str) -> int:  # noqa: ANN001
        report = NewReport(service_code=code, channel=Channel.ENTERPRISE, address="湖南某某科技有限公司（岳麓区）",
                           description="区住建局工作人员多次索要好处费", phone="13900000001",
                           account_id="enterprise:91430100X")
        return submit_report(conn, report, area_index=load_area_index(conn), now=city.clock.now()).report_id

    def seed(conn) -> list[int]:  # noqa: ANN001
        add_category(conn, code="ent-policy", name_zh="惠企政策兑现问题", name_en="Support policy not delivered",
                     group_zh="营商环境", group_en="Business environment", department_code="shichang",
                     ack_minutes=240, resolve_hours=40, calendar="working", channels=[str(Channel.ENTERPRISE)])
        # In a business category, and in a public one through the enterprise channel.
        return [file(conn, "ent-policy"), file(conn, "noise")]

    hidden = city.db.write_sync(seed)
    with make_client(city) as client:
        public = post(client, city).json()[0]["service_request_id"]
        services = [s["service_code"] for s in client.get("/open311/v2/services.json").json()]
        assert "ent-policy" not in services
        for fmt in ("json", "xml"):
            listed = client.get(f"/open311/v2/requests.{fmt}?extensions=true")
            assert listed.status_code == 200 and "湖南某某科技" not in listed.text and "好处费" not in listed.text
            updates = client.get(f"/open311/v2/servicerequestupdates.{fmt}")
            assert updates.status_code == 200 and "好处费" not in updates.text
        assert [r["service_request_id"] for r in client.get("/open311/v2/requests.json").json()] == [public]
        for rid in hidden:
            assert client.get(f"/open311/v2/requests/{rid}.json").status_code == 404
            assert client.get(f"/open311/v2/requests.json?service_request_id={rid}").json() == []
        assert {u["service_request_id"] for u in client.get("/open311/v2/servicerequestupdates.json").json()} \
            == {public}


def test_list_filters_and_paging(city: City) -> None:
    with make_client(city) as client:
        ids = []
        for i in range(5):
            city.clock.advance(minutes=10)
            # 500 m apart so they stay separate cases
            ids.append(post(client, city, lat=28.1960 + i * 0.005).json()[0]["service_request_id"])
        post(client, city, service_code="noise", lat=28.2200)
        all_requests = client.get("/open311/v2/requests.json").json()
        validate("requests.json", all_requests)
        assert len(all_requests) == 6
        assert [r["service_request_id"] for r in client.get("/open311/v2/requests.json?service_code=pothole")
                .json()] == list(reversed(ids))
        assert len(client.get(f"/open311/v2/requests.json?service_request_id={ids[0]},{ids[1]}").json()) == 2
        page2 = client.get("/open311/v2/requests.json?page=2&page_size=4").json()
        assert len(page2) == 2
        assert client.get("/open311/v2/requests.json?status=closed").json() == []
        assert len(client.get("/open311/v2/requests.json?status=open,closed").json()) == 6
        start = city.clock.now() - timedelta(minutes=25)
        recent = client.get("/open311/v2/requests.json", params={"start_date": start.isoformat()}).json()
        assert len(recent) == 4  # three potholes and the noise report
        assert client.get("/open311/v2/requests.json", params={
            "updated_after": city.clock.now().isoformat()}).json() == []
        old = client.get("/open311/v2/requests.json", params={
            "end_date": (city.clock.now() - timedelta(days=1)).isoformat()}).json()
        assert old == []


def test_default_window_is_90_days(sqlite_city: City) -> None:
    with make_client(sqlite_city) as client:
        post(client, sqlite_city)
        sqlite_city.clock.advance(days=91)
        assert client.get("/open311/v2/requests.json").json() == []
        assert len(client.get("/open311/v2/requests/1.json").json()) == 1


def test_token_lookup(sqlite_city: City) -> None:
    with make_client(sqlite_city) as client:
        created = post(client, sqlite_city).json()[0]
        found = client.get(f"/open311/v2/tokens/{created['token']}.json").json()
    assert found == [{"service_request_id": created["service_request_id"], "token": created["token"]}]


def test_georeport_client_reads_services_and_requests(city: City, live_server) -> None:  # noqa: ANN001
    from georeport import GeoReport

    with make_client(city) as client:
        rid = post(client, city, service_code="manhole", **{"attribute[cover_state]": "broken"}).json()[0][
            "service_request_id"]
    for fmt in ("json", "xml"):
        geo = GeoReport(f"{live_server.url}/open311/v2", jurisdiction="changsha.gov.cn", output_format=fmt)
        services = geo.get_service_list()
        assert len(services) == 15
        assert geo.get_service_definition("manhole")
        requests = geo.get_service_requests()
        requests = requests if isinstance(requests, list) else [requests]
        assert any(r["service_request_id"] == rid for r in requests)
        one = geo.get_service_request(rid)
        one = one[0] if isinstance(one, list) else one
        assert one["service_code"] == "manhole"


def test_a_text_field_beside_photos_holds_at_most_a_form(sqlite_city: City) -> None:
    """The photos may be megabytes; a text field beside them is a form's worth, not a photo's."""
    from .conftest import jpeg

    data = {"api_key": sqlite_city.api_key, "service_code": "pothole", "lat": WUYI_SQUARE[0],
            "long": WUYI_SQUARE[1], "description": "路面有个大坑", "address_string": "x" * (200 * 1024)}
    with make_client(sqlite_city) as client:
        refused = client.post("/open311/v2/requests.json", data=data, files={"media": ("a.jpg", jpeg(), "image/jpeg")})
        # Refused as the form is read, not after the field was taken in whole and judged.
        assert refused.status_code == 400 and "form body" in refused.json()[0]["description"], refused.text
    assert sqlite_city.db.read_sync(lambda c: c.execute(reports.select()).all()) == []

"""Uploading a material: no file is not an upload, a material holds a bounded number of files, and an
upload the application cannot take is refused before its files are read or decoded."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from wecity.core.errors import InvalidTransition, ValidationFailed
from wecity.govservice import applications as apply

from ..conftest import make_client
from ..web.conftest import csrf_token, decoded_photos  # noqa: F401  (a fixture)
from .conftest import Services
from .test_api import _png, citizen_headers
from .test_flow import licensed, view, write
from .test_pages import EN, _as_citizen


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    with make_client(services.city) as c:
        yield c


def _draft(s: Services) -> int:
    licensed(s)
    app_id = write(s, lambda c: apply.start_application(c, citizen=s.citizen, matter_code="T-SIGN",
                                                         now=s.city.clock.now()))
    write(s, lambda c: apply.save_draft(c, app_id, citizen=s.citizen, now=s.city.clock.now(),
                                        form_data={"address": "五一大道 9 号", "width_m": 2}))
    return int(app_id)


def test_no_file_leaves_a_required_material_missing_and_the_draft_unsubmittable(services: Services) -> None:
    s = services
    app_id = _draft(s)
    with pytest.raises(ValidationFailed) as refused:
        write(s, lambda c: apply.attach_material(c, app_id, citizen=s.citizen, material="design", media=[],
                                                 now=s.city.clock.now()))
    assert refused.value.code == "govservice.no_files"
    assert view(s, app_id)["materials"]["design"]["state"] == "missing"
    with pytest.raises(ValidationFailed) as missing:
        write(s, lambda c: apply.submit(c, app_id, citizen=s.citizen, now=s.city.clock.now()))
    assert missing.value.code == "govservice.materials_missing"


def test_the_page_says_choose_a_file_when_none_was_chosen(client: TestClient, services: Services) -> None:
    s = services
    app_id = _draft(s)
    _as_citizen(client, s, "13912345678")
    token = csrf_token(client.get(f"/services/applications/{app_id}", headers=EN).text)
    r = client.post(f"/services/applications/{app_id}/upload", headers=EN, follow_redirects=False,
                    data={"csrf_token": token, "material": "design"},
                    files={"files": ("", b"", "application/octet-stream")})
    assert r.status_code == 400 and "choose at least one file to upload" in r.text
    assert view(s, app_id)["materials"]["design"]["state"] == "missing"


def test_a_material_holds_at_most_its_files_and_more_are_refused(services: Services) -> None:
    s = services
    app_id = _draft(s)
    cap = apply.MAX_MATERIAL_FILES
    write(s, lambda c: apply.attach_material(c, app_id, citizen=s.citizen, material="design",
                                             media=[f"m{i}" for i in range(cap - 1)], now=s.city.clock.now()))
    with pytest.raises(ValidationFailed) as refused:
        write(s, lambda c: apply.attach_material(c, app_id, citizen=s.citizen, material="design", media=["a", "b"],
                                                 now=s.city.clock.now()))
    assert refused.value.code == "govservice.too_many_files"
    write(s, lambda c: apply.attach_material(c, app_id, citizen=s.citizen, material="design", media=["last"],
                                             now=s.city.clock.now()))
    with pytest.raises(ValidationFailed):
        write(s, lambda c: apply.attach_material(c, app_id, citizen=s.citizen, material="design", media=["more"],
                                                 now=s.city.clock.now()))
    assert len(view(s, app_id)["materials"]["design"]["media"]) == cap


def test_an_upload_the_application_cannot_take_is_refused_before_any_photo_is_decoded(
        client: TestClient, services: Services, decoded_photos: list[int]) -> None:  # noqa: F811
    s = services
    app_id = _draft(s)
    me = citizen_headers(s, "13912345678")
    png = {"files": ("d.png", _png(), "image/png")}
    r = client.post(f"/api/v1/applications/{app_id}/materials/nope", files=png, headers=me)
    assert r.status_code == 400 and r.json()["code"] == "govservice.unknown_material"
    assert decoded_photos == []
    r = client.post(f"/api/v1/applications/{app_id}/materials/design", files=png, headers=me)
    assert r.status_code == 200 and decoded_photos == [1]
    write(s, lambda c: apply.submit(c, app_id, citizen=s.citizen, now=s.city.clock.now()))
    r = client.post(f"/api/v1/applications/{app_id}/materials/design", files=png, headers=me)
    assert r.status_code == 409 and decoded_photos == [1]
    # The page alike: a submitted application takes no files, an unknown material none either.
    _as_citizen(client, s, "13912345678")
    token = csrf_token(client.get(f"/services/applications/{app_id}", headers=EN).text)
    r = client.post(f"/services/applications/{app_id}/upload", headers=EN, follow_redirects=False,
                    data={"csrf_token": token, "material": "design"}, files=png)
    assert r.status_code == 409 and decoded_photos == [1]
    with pytest.raises(InvalidTransition):
        write(s, lambda c: apply.attach_material(c, app_id, citizen=s.citizen, material="design", media=["x"],
                                                 now=s.city.clock.now()))


def test_the_page_refuses_an_unknown_material_before_decoding(client: TestClient, services: Services,
                                                              decoded_photos: list[int]) -> None:  # noqa: F811
    s = services
    app_id = _draft(s)
    _as_citizen(client, s, "13912345678")
    token = csrf_token(client.get(f"/services/applications/{app_id}", headers=EN).text)
    r = client.post(f"/services/applications/{app_id}/upload", headers=EN, follow_redirects=False,
                    data={"csrf_token": token, "material": "nope"}, files={"files": ("d.png", _png(), "image/png")})
    assert r.status_code == 400 and decoded_photos == []

"""Duplicate reports by text and photo: the parts of the score, a forwarded photo merging a misfiled report
into the first one, a proposal without photos that dispatchers decide, and who may see and decide."""

from __future__ import annotations

import io
import random
from typing import Any

import pytest
import sqlalchemy as sa
from PIL import Image, ImageDraw, ImageEnhance

from wecity.ai import duplicates
from wecity.ai.duplicates import PHOTO_MATCH, Pair, cosine, photo_similarity, text_features
from wecity.ai.models import ai_duplicates
from wecity.cases import engine
from wecity.cases.models import cases, categories, reports
from wecity.core.errors import NotFound
from wecity.identity.models import users
from wecity.identity.service import get_user, start_session
from wecity.media.images import inspect_image

from ..conftest import City, make_client

WUYI = (28.1960, 112.9770)  # 五一广场, 芙蓉区
ABOUT_120_M_NORTH = (WUYI[0] + 0.00108, WUYI[1])


def _scene(seed: int) -> Image.Image:
    rng = random.Random(seed)
    image = Image.new("RGB", (800, 600), (rng.randint(60, 200), rng.randint(60, 200), rng.randint(60, 200)))
    draw = ImageDraw.Draw(image)
    for _ in range(14):
        x, y = rng.randint(0, 740), rng.randint(0, 540)
        draw.rectangle((x, y, x + rng.randint(30, 200), y + rng.randint(30, 150)),
                       fill=(rng.randint(0, 255), rng.randint(0, 255), rng.randint(0, 255)))
    return image


def _jpeg(image: Image.Image, quality: int = 85) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality)
    return out.getvalue()


def _forwarded(image: Image.Image) -> Image.Image:
    """The photo as it comes back after being passed around: cropped a little, darker, smaller."""
    cropped = image.crop((24, 18, image.width - 16, image.height - 20)).resize((640, 480))
    return ImageEnhance.Brightness(cropped).enhance(0.9)


def _phash(data: bytes) -> str:
    checked = inspect_image(data, max_bytes=10_000_000, max_pixels=50_000_000)
    assert checked.phash is not None
    return checked.phash


def test_texts_alike_score_high_and_unrelated_ones_low_in_chinese_and_english() -> None:
    same = text_features("井盖缺失，晚上很危险")
    assert cosine(same, text_features("井盖缺失，晚上很危险！")) > 0.99
    assert cosine(same, text_features("人行道井盖缺失，很危险")) > 0.5
    assert cosine(same, text_features("广场舞音响太大声")) < 0.1
    assert cosine(text_features("Streetlight out on Elm Street"), text_features("the street light on elm st is out")) > 0.4
    assert cosine(text_features("Streetlight out on Elm Street"), text_features("Overflowing trash bin")) < 0.15
    assert cosine(text_features(""), same) == 0.0


def test_a_forwarded_copy_of_a_photo_matches_and_another_scene_does_not() -> None:
    first = _scene(1)
    original, copy, other = _phash(_jpeg(first)), _phash(_jpeg(_forwarded(first), 60)), _phash(_jpeg(_scene(2)))
    assert photo_similarity([original], [copy]) is not None
    assert photo_similarity([original], [copy]) >= PHOTO_MATCH  # type: ignore[operator]
    assert photo_similarity([original], [other]) < 0.75  # type: ignore[operator]
    assert photo_similarity([original], []) is None
    assert photo_similarity([other, original], [copy]) == photo_similarity([original], [copy])  # the closest pair


def test_only_a_photo_match_lets_the_platform_merge_and_only_with_something_else_in_common() -> None:
    matched = dict(case_id=2, candidate_id=1, photo=0.95, distance_m=120.0)
    assert Pair(text=0.0, same_category=True, **matched).merges  # type: ignore[arg-type]
    assert Pair(text=0.3, same_category=False, **matched).merges  # type: ignore[arg-type]
    assert Pair(text=0.0, same_category=False, same_department=True, **matched).merges  # type: ignore[arg-type]
    # One street corner photographed for two different problems: nothing else in common.
    assert not Pair(text=0.05, same_category=False, **matched).merges  # type: ignore[arg-type]
    # The same words and category, close by, but no photo: proposed at most, never merged.
    words_only = Pair(2, 1, text=1.0, photo=None, distance_m=60.0, same_category=True)
    assert not words_only.merges and words_only.score >= duplicates.PROPOSE
    assert not Pair(2, 1, text=0.5, photo=0.95, distance_m=260.0, same_category=True).merges  # too far
    assert Pair(2, 1, 0.0, 0.5, 290.0, False).score < duplicates.PROPOSE  # chance photos, nothing else


def test_a_case_placed_only_by_an_address_in_words_gets_nothing_from_its_place() -> None:
    """Every case placed from one road's name sits at the road's one point: a distance of 0 says nothing, so
    two cases of a category on one road are not proposed for that, and a photo match does not merge them."""
    same_point = dict(case_id=2, candidate_id=1, distance_m=0.0, same_category=True)
    assert Pair(text=0.0, photo=None, **same_point).score >= duplicates.PROPOSE  # type: ignore[arg-type]
    assert Pair(text=0.0, photo=None, placed_by_address=True,  # type: ignore[arg-type]
                **same_point).score < duplicates.PROPOSE
    assert not Pair(text=0.3, photo=0.95, placed_by_address=True, **same_point).merges  # type: ignore[arg-type]
    # what it says is still evidence: the same words and a matching photo are proposed
    assert Pair(text=0.6, photo=0.95, placed_by_address=True,  # type: ignore[arg-type]
                **same_point).score >= duplicates.PROPOSE


def _staff(city: City, username: str) -> dict[str, str]:
    token = city.db.write_sync(lambda c: start_session(c, c.execute(sa.select(users.c.id).where(
        users.c.username == username)).scalar_one(), city.clock.now()))
    return {"Authorization": f"Bearer {token}"}


def _report(client: Any, city: City, code: str, where: tuple[float, float], text: str,
            photo: bytes | None = None) -> int:
    data = {"api_key": city.api_key, "service_code": code, "lat": where[0], "long": where[1], "description": text}
    if code == "manhole":
        data["attribute[cover_state]"] = "missing"
    files = {"media": ("photo.jpg", photo, "image/jpeg")} if photo else None
    response = client.post("/open311/v2/requests.json", data=data, files=files)
    assert response.status_code == 200, response.text
    return int(response.json()[0]["service_request_id"])


def _case_of(city: City, case_id: int) -> Any:
    return city.db.read_sync(lambda c: c.execute(sa.select(cases.c.status, cases.c.merged_into_id).where(
        cases.c.id == case_id)).one())


def _review(city: City) -> int:
    return city.db.write_sync(lambda c: duplicates.review_new(c, now=city.clock.now()))


def test_a_misfiled_report_with_a_forwarded_photo_is_merged_into_the_first_by_the_runner(city: City) -> None:
    scene = _scene(7)
    with make_client(city) as client:
        assert _review(city) == 0  # the first run only marks where the city is: no review backwards
        first = _report(client, city, "pothole", WUYI, "路面塌陷，电动车容易摔", _jpeg(scene))
        city.clock.advance(hours=3)
        # 120 m away and under another category: intake opens a case of its own.
        second = _report(client, city, "manhole", ABOUT_120_M_NORTH, "路面塌陷一个大坑",
                         _jpeg(_forwarded(scene), 60))
        assert _case_of(city, second).status == "dispatched"
        assert _review(city) == 2
    assert tuple(_case_of(city, second)) == ("merged", first)
    found = city.db.read_sync(lambda c: c.execute(sa.select(ai_duplicates)).one())
    assert (found.case_id, found.candidate_id, found.state, found.decided_by) == (second, first, "merged", "platform:ai")
    assert found.photo_similarity >= PHOTO_MATCH and 100 < found.distance_m < 140 and not found.same_category
    assert _review(city) == 0  # each case is looked at once
    assert city.db.read_sync(duplicates.merge_figures)["merged_by_platform"] == 1


def test_a_platform_merge_is_taken_apart_on_the_case_page_and_never_made_again(city: City) -> None:
    """A merge made by the platform is undone by a dispatcher (why required): the case comes back with its
    report, the pair is never proposed or merged again, and the figures count the merge as a wrong one."""
    from tests.web.conftest import csrf_token, log_in

    scene = _scene(7)
    with make_client(city) as client:
        _review(city)
        first = _report(client, city, "pothole", WUYI, "路面塌陷，电动车容易摔", _jpeg(scene))
        city.clock.advance(hours=3)
        second = _report(client, city, "manhole", ABOUT_120_M_NORTH, "路面塌陷一个大坑", _jpeg(_forwarded(scene), 60))
        _review(city)
        assert tuple(_case_of(city, second)) == ("merged", first)
        # the staff API: a sign-in is required, and why; another department's handler may not
        assert client.post(f"/api/v1/cases/{second}/unmerge", json={"note": "两处不同的坑"}).status_code == 401
        refused = client.post(f"/api/v1/cases/{second}/unmerge", json={"note": "  "},
                              headers=_staff(city, "dispatcher"))
        assert refused.status_code == 400 and refused.json()["code"] == "case.note"
        assert client.post(f"/api/v1/cases/{second}/unmerge", json={"note": "两处不同的坑"},
                           headers=_staff(city, "zhujian")).status_code == 403
        # the page: a visitor without a sign-in is sent to it; another department's handler is refused
        anonymous = client.post(f"/staff/cases/{second}/unmerge", data={"note": "x"}, follow_redirects=False)
        assert anonymous.status_code == 303 and "/login" in anonymous.headers["location"]
        assert log_in(client, "zhujian").status_code == 303
        other = client.get("/staff")  # a page of its own, for the form token
        refused = client.post(f"/staff/cases/{second}/unmerge", follow_redirects=False, data={
            "note": "两处不同的坑", "csrf_token": csrf_token(other.text)})
        assert refused.status_code == 403 and "过期" not in refused.text  # refused for its rights, not the form
        assert tuple(_case_of(city, second)) == ("merged", first)
        client.cookies.clear()
        assert log_in(client, "dispatcher").status_code == 303
        page = client.get(f"/staff/cases/{second}")
        assert page.status_code == 200 and f'action="/staff/cases/{second}/unmerge"' in page.text
        undone = client.post(f"/staff/cases/{second}/unmerge", data={
            "note": "两处不同的坑，相隔一百多米", "csrf_token": csrf_token(page.text)}, follow_redirects=False)
        assert undone.status_code == 303, undone.text[:500]
        assert f'action="/staff/cases/{second}/unmerge"' not in client.get(f"/staff/cases/{second}").text
    assert tuple(_case_of(city, second)) == ("dispatched", None)
    reports_of_second = city.db.read_sync(lambda c: c.execute(sa.select(sa.func.count()).select_from(reports).where(
        reports.c.case_id == second)).scalar_one())
    assert reports_of_second == 1
    pair = city.db.read_sync(lambda c: c.execute(sa.select(ai_duplicates)).one())
    assert (pair.state, pair.decided_by) == ("undone", "platform:ai")
    figures = city.db.read_sync(duplicates.merge_figures)
    assert (figures["merged_by_platform"], figures["undone"]) == (0, 1)
    city.db.write_sync(lambda c: duplicates.review_case(c, second, now=city.clock.now()))
    assert tuple(_case_of(city, second)) == ("dispatched", None)  # not merged again


def test_the_finder_waits_at_a_gap_in_case_ids_instead_of_passing_a_case_not_yet_committed(city: City) -> None:
    """On PostgreSQL case 100 can commit after case 101: the finder stops at the gap, and takes it for a
    rolled-back insert only once it has stood a minute."""

    from wecity.ai.models import ai_cursors

    assert _review(city) == 0  # the cursor starts at the newest case
    position = city.db.read_sync(lambda c: c.execute(sa.select(ai_cursors.c.position)).scalar_one())

    def add_after_a_gap(conn: sa.Connection) -> None:
        row = conn.execute(sa.select(categories.c.code, categories.c.department_id).where(
            categories.c.code == "garbage")).one()
        now = city.clock.now()
        conn.execute(cases.insert().values(id=position + 2, category_code=row.code, department_id=row.department_id,
                                           status="dispatched", description="垃圾桶满了", source="citizen",
                                           lat=WUYI[0], long=WUYI[1], created_at=now, updated_at=now))

    city.db.write_sync(add_after_a_gap)
    assert _review(city) == 0  # id position + 1 may still commit
    city.clock.advance(seconds=30)
    assert _review(city) == 0
    city.clock.advance(seconds=31)
    assert _review(city) == 1  # stood a minute: taken for a rolled-back insert
    assert city.db.read_sync(lambda c: c.execute(sa.select(ai_cursors.c.position)).scalar_one()) == position + 2


def test_taking_a_merge_apart_settles_the_pair_s_record_as_what_it_was(city: City) -> None:
    """A platform merge becomes undone; a proposal still open becomes dismissed (staff said they differ); a
    dismissed pair stays dismissed; a pair never recorded is recorded, so the finder passes it over."""
    now = city.clock.now()
    base = dict(score=0.5, text_similarity=0.5, distance_m=10.0, same_category=True, found_at=now)
    city.db.write_sync(lambda c: c.execute(ai_duplicates.insert(), [
        {**base, "case_id": 2, "candidate_id": 1, "state": "merged", "decided_by": "platform:ai"},
        {**base, "case_id": 4, "candidate_id": 3, "state": "proposed", "decided_by": None},
        {**base, "case_id": 6, "candidate_id": 5, "state": "dismissed", "decided_by": "user:x"}]))
    for case_id, into in ((2, 1), (4, 3), (6, 5), (8, 7)):
        city.db.write_sync(lambda c, case_id=case_id, into=into: duplicates.on_case_unmerged(
            c, case_id=case_id, into_case_id=into, actor="user:dispatcher", now=now))
    states = dict(city.db.read_sync(lambda c: c.execute(sa.select(ai_duplicates.c.case_id, ai_duplicates.c.state))
                                    .all()))
    assert states == {2: "undone", 4: "dismissed", 6: "dismissed", 8: "undone"}
    figures = city.db.read_sync(duplicates.merge_figures)
    assert (figures["undone"], figures["dismissed"], figures["proposed"]) == (1, 2, 0)


def _streetlight_pair(client: Any, city: City) -> tuple[int, int]:
    """Two reports of the same dark street, two hours and 120 m apart, without photos: the older case first."""
    _review(city)
    first = _report(client, city, "streetlight", WUYI, "整条路的路灯都不亮")
    city.clock.advance(hours=2)
    return first, _report(client, city, "streetlight", ABOUT_120_M_NORTH, "这条路的路灯晚上都不亮")


def test_without_photos_a_likely_pair_is_proposed_and_the_dispatcher_decides(city: City) -> None:
    with make_client(city) as client:
        first, second = _streetlight_pair(client, city)
        third = _report(client, city, "noise", (WUYI[0], WUYI[1] + 0.0012), "广场舞音响太大声")
        _review(city)
        assert _case_of(city, second).status == "dispatched"  # proposed, not merged
        dispatcher, handler = _staff(city, "dispatcher"), _staff(city, "zhujian")
        listed = client.get("/api/v1/ai/duplicates", params={"case_id": first}, headers=dispatcher)
        assert listed.status_code == 200, listed.text
        proposals = listed.json()["proposals"]
        assert [(p["case_id"], p["candidate_id"]) for p in proposals] == [(second, first)]  # not the noise
        assert proposals[0]["photo_similarity"] is None and proposals[0]["same_category"]
        assert client.get("/api/v1/ai/duplicates", params={"case_id": third}, headers=dispatcher).json()["proposals"] == []
        # The case page shows it to the dispatcher, who says they differ: never proposed again.
        page = client.get(f"/staff/cases/{first}", headers=dispatcher)
        assert page.status_code == 200 and f'data-proposal="{proposals[0]["id"]}"' in page.text
        assert client.post(f"/api/v1/ai/duplicates/{proposals[0]['id']}/dismiss", headers=handler).status_code == 403
        dismissed = client.post(f"/api/v1/ai/duplicates/{proposals[0]['id']}/dismiss", headers=dispatcher)
        assert dismissed.status_code == 200 and dismissed.json()["state"] == "dismissed"
        assert client.post(f"/api/v1/ai/duplicates/{proposals[0]['id']}/dismiss",
                           headers=dispatcher).json()["code"] == "ai.duplicate_not_found"
        city.db.write_sync(lambda c: duplicates.review_case(c, second, now=city.clock.now()))
        assert client.get("/api/v1/ai/duplicates", params={"case_id": first}, headers=dispatcher).json()["proposals"] == []


def test_a_proposal_is_dismissed_only_by_whoever_may_merge_the_pair_and_it_is_on_the_record(city: City) -> None:
    """A department's supervisor decides only pairs of its own cases (the dispatch centre any); from a case's
    page only a proposal about that case; both timelines and the audit log say who decided."""
    from wecity.cases.timeline import case_events
    from wecity.identity.models import audit_log

    with make_client(city) as client:
        _review(city)
        first = _report(client, city, "pothole", WUYI, "路面塌陷一个大坑，很危险")  # 住建's
        city.clock.advance(hours=1)
        second = _report(client, city, "pothole", ABOUT_120_M_NORTH, "路面塌陷了一个大坑")
        _review(city)
        proposal = client.get("/api/v1/ai/duplicates", params={"case_id": second},
                              headers=_staff(city, "dispatcher")).json()["proposals"][0]
        other_department = client.post(f"/api/v1/ai/duplicates/{proposal['id']}/dismiss",
                                       headers=_staff(city, "chengguan-lead"))
        assert other_department.status_code == 403 and other_department.json()["code"] == "case.not_your_department"
        dispatcher = city.db.read_sync(lambda c: get_user(c, c.execute(sa.select(users.c.id).where(
            users.c.username == "dispatcher")).scalar_one()))
        assert dispatcher is not None
        actor = engine.Actor.staff(dispatcher)
        with pytest.raises(NotFound):  # from another case's page
            city.db.write_sync(lambda c: duplicates.dismiss(c, proposal["id"], actor, city.clock.now(),
                                                            case_id=first + second + 100))
        dismissed = client.post(f"/api/v1/ai/duplicates/{proposal['id']}/dismiss", headers=_staff(city, "dispatcher"))
        assert dismissed.status_code == 200
    for case_id in (first, second):
        events = city.db.read_sync(lambda c, case_id=case_id: case_events(c, case_id))
        assert [e["event"] for e in events if e["event"] == "duplicate_dismissed"] == ["duplicate_dismissed"]
        assert not [e for e in city.db.read_sync(lambda c, case_id=case_id: case_events(c, case_id, public_only=True))
                    if e["event"] == "duplicate_dismissed"]
    audited = city.db.read_sync(lambda c: c.execute(sa.select(audit_log.c.outcome).where(
        audit_log.c.action == "ai.duplicate_dismissed")).scalars().all())
    assert audited == ["ok"]


def test_a_dispatcher_merges_from_the_proposal_on_the_case_page(city: City) -> None:
    from tests.web.conftest import csrf_token, log_in

    with make_client(city) as client:
        _review(city)
        first = _report(client, city, "garbage", WUYI, "垃圾桶满了没人清运，味道很大")
        city.clock.advance(hours=1)
        second = _report(client, city, "garbage", ABOUT_120_M_NORTH, "垃圾桶满了好几天没人清运")
        _review(city)
        proposal = client.get("/api/v1/ai/duplicates", params={"case_id": second},
                              headers=_staff(city, "dispatcher")).json()["proposals"][0]
        assert log_in(client, "dispatcher").status_code == 303
        page = client.get(f"/staff/cases/{first}")  # the older case's page shows the pair too
        assert page.status_code == 200 and f'data-proposal="{proposal["id"]}"' in page.text
        merged = client.post(f"/staff/cases/{first}/merge-proposal", data={
            "proposal_id": proposal["id"], "csrf_token": csrf_token(page.text)}, follow_redirects=False)
        assert merged.status_code == 303, merged.text[:500]
        assert "data-proposal" not in client.get(f"/staff/cases/{first}").text
    assert tuple(_case_of(city, second)) == ("merged", first)  # the newer into the older
    state = city.db.read_sync(lambda c: c.execute(sa.select(ai_duplicates.c.state, ai_duplicates.c.decided_by)).one())
    assert state.state == "merged" and state.decided_by.startswith("user:")


def test_who_may_see_and_decide_duplicates(city: City) -> None:
    with make_client(city) as client:
        assert client.get("/api/v1/ai/duplicates", params={"case_id": 1}).status_code == 401
        assert client.post("/api/v1/ai/duplicates/1/dismiss").status_code == 401
        assert client.get("/api/v1/ai/duplicates/figures").status_code == 401
        handler = _staff(city, "zhujian")
        assert client.get("/api/v1/ai/duplicates", params={"case_id": 1}, headers=handler).status_code == 403
        assert client.post("/api/v1/ai/duplicates/1/dismiss", headers=handler).status_code == 403
        assert client.get("/api/v1/ai/duplicates/figures", headers=handler).status_code == 200
        supervisor = _staff(city, "supervisor")
        assert client.get("/api/v1/ai/duplicates", params={"case_id": 1}, headers=supervisor).status_code == 200
        assert client.get("/api/v1/ai/duplicates", params={"case_id": 0}, headers=supervisor).status_code == 400


def test_a_pair_with_a_resolved_case_is_no_longer_proposed(city: City) -> None:
    """A merge takes only cases still being worked on: a resolved one leaves the proposals."""
    with make_client(city) as client:
        first, second = _streetlight_pair(client, city)
        _review(city)
        dispatcher = _staff(city, "dispatcher")
        assert client.get("/api/v1/ai/duplicates", params={"case_id": first}, headers=dispatcher).json()["proposals"]
        city.db.write_sync(lambda c: c.execute(sa.text("update cases set status = 'resolved' where id = :i"),
                                               {"i": first}))
        assert client.get("/api/v1/ai/duplicates", params={"case_id": second}, headers=dispatcher).json()[
            "proposals"] == []

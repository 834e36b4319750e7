"""Category suggestion and the loop that learns from staff: a model trained on the city's cases serves the
API; staff re-file misfiled cases, the retrain learns it, and only a better model replaces the serving one."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from wecity.ai import training
from wecity.ai.models import ai_models
from wecity.ai.suggest import ModelCache, suggest
from wecity.cases import engine
from wecity.cases.models import cases, categories, reports
from wecity.core.limits import parse_rule
from wecity.core.runner import hold_periodic, release_periodic
from wecity.demo.history import REPORTS
from wecity.identity.models import users
from wecity.identity.service import get_user, start_session

from ..conftest import City, make_client

PLACES = ["五一大道", "解放西路", "岳麓大道", "芙蓉中路", "韶山北路", "湘江中路", "人民东路", "劳动西路"]
BIKES = ["共享单车乱停堵住小区门口", "共享单车把人行道占满了", "地铁站出口共享单车太多无法通行", "单车乱停乱放没人管",
         "共享单车倒了一地", "路口堆满了共享电单车"]


def _add_cases(city: City, rows: list[tuple[str, str]]) -> list[int]:
    now = city.clock.now()

    def add(conn: sa.Connection) -> list[int]:
        depts = dict(conn.execute(sa.select(categories.c.code, categories.c.department_id)).all())
        ids = []
        for i, (code, text) in enumerate(rows):
            result = conn.execute(cases.insert().values(
                category_code=code, status="dispatched", department_id=depts[code], description=text,
                source="citizen", created_at=now - timedelta(hours=i), updated_at=now))
            ids.append(int(result.inserted_primary_key[0]))
        return ids

    return city.db.write_sync(add)


def _history(rng: random.Random, per_category: int = 12) -> list[tuple[str, str]]:
    rows = []
    for code, (_, texts) in REPORTS.items():
        if code == "shared-bikes":
            continue
        for _ in range(per_category):
            rows.append((code, f"{rng.choice(PLACES)}{rng.choice(texts)}"))
    return rows


def _train(city: City) -> dict[str, Any]:
    return training.train_sync(city.db, var_dir=city.settings.var_dir, now=city.clock.now(), by="test")


def test_the_first_model_serves_and_suggests(city: City) -> None:
    rng = random.Random(1)
    _add_cases(city, _history(rng))
    card = _train(city)
    assert card["state"] == "serving" and card["version"] == 1 and card["rows_holdout"] > 20
    assert card["metrics"]["top3"] >= 0.9, card["metrics"]
    cache = ModelCache()
    found = city.db.read_sync(lambda c: suggest(c, cache, city.settings.var_dir, "中山路井盖被偷了，很危险"))
    assert found["suggestions"][0]["code"] == "manhole" and len(found["suggestions"]) == 3
    assert abs(sum(s["probability"] for s in found["suggestions"]) - 1) < 0.5
    assert found["route"] in ("automatic", "dispatch_centre") and found["model_version"] == 1
    # The same data again: not better on the held-back cases, so it does not replace the serving model.
    again = _train(city)
    assert again["state"] == "rejected"
    assert again["serving_metrics"] == {k: v for k, v in card["metrics"].items() if k not in ("data_digest", "method")}
    assert city.db.read_sync(training.serving).version == 1


def test_staff_corrections_teach_the_next_model(city: City) -> None:
    """Reports about shared bikes were all filed as illegal parking. Staff re-file 50 of them; the scheduled
    retrain learns it, serves, and suggests shared bikes for bike reports it never saw."""
    rng = random.Random(2)
    _add_cases(city, _history(rng))
    misfiled = _add_cases(city, [("illegal-parking", f"{rng.choice(PLACES)}{rng.choice(BIKES)}") for _ in range(60)])
    first = _train(city)
    assert first["state"] == "serving"
    cache = ModelCache()
    unseen = [f"{p}{t}，请尽快清理" for p in ("东塘", "侯家塘") for t in BIKES]

    def shared_bikes_share(c: sa.Connection) -> float:
        answers = [suggest(c, cache, city.settings.var_dir, text) for text in unseen]
        return sum(a["suggestions"][0]["code"] == "shared-bikes" for a in answers) / len(answers)

    assert city.db.read_sync(shared_bikes_share) == 0.0
    dispatcher = city.db.read_sync(lambda c: get_user(c, c.execute(sa.select(users.c.id).where(
        users.c.username == "dispatcher")).scalar_one()))
    assert dispatcher is not None
    actor = engine.Actor.staff(dispatcher)
    for case_id in misfiled[:50]:
        city.db.write_sync(lambda c, case_id=case_id: engine.recategorise(c, case_id, "shared-bikes", actor,
                                                                          city.clock.now(), note="应为共享单车"))
    # The runner's scheduled retrain (the same function the periodic task awaits).
    second = _train(city)
    assert second["state"] == "serving" and second["replaced"] == 1
    assert second["metrics"]["macro_f1"] > second["serving_metrics"]["macro_f1"]
    # The cache loads the new version beside the one serving; once it has, the new one answers.
    assert city.db.read_sync(lambda c: suggest(c, cache, city.settings.var_dir, unseen[0]))["model_version"] == 1
    cache.join(timeout=60)
    assert city.db.read_sync(lambda c: suggest(c, cache, city.settings.var_dir, unseen[0]))["model_version"] == 2
    assert city.db.read_sync(shared_bikes_share) >= 0.75
    cards = city.db.read_sync(lambda c: c.execute(sa.select(ai_models.c.version, ai_models.c.state)
                                                  .order_by(ai_models.c.version)).all())
    assert cards == [(1, "retired"), (2, "serving")]


def test_the_suggestion_api_is_public_and_rate_limited_and_training_is_for_administrators(city: City) -> None:
    rng = random.Random(3)
    _add_cases(city, _history(rng, per_category=6))
    admin = city.db.write_sync(lambda c: start_session(c, c.execute(sa.select(users.c.id).where(
        users.c.username == "admin")).scalar_one(), city.clock.now()))
    handler = city.db.write_sync(lambda c: start_session(c, c.execute(sa.select(users.c.id).where(
        users.c.username == "chengguan")).scalar_one(), city.clock.now()))
    limits = {**city.settings.rate_limits, "ai_suggest": parse_rule("3/minute")}
    with make_client(city, rate_limits=limits) as client:
        empty = client.post("/api/v1/ai/suggest", json={"description": "路灯不亮"})
        assert empty.status_code == 200 and empty.json()["suggestions"] == []  # no model yet
        assert client.post("/api/v1/ai/train").status_code == 401
        assert client.post("/api/v1/ai/train", headers={"Authorization": f"Bearer {handler}"}).status_code == 403
        # While the runner (or another administrator) trains, a second training is refused, not run beside it.
        held = city.db.write_sync(lambda c: hold_periodic(c, training.RETRAIN_TASK, now=city.clock.now(),
                                                          holder="runner-x", lease_seconds=600))
        assert held
        busy = client.post("/api/v1/ai/train", headers={"Authorization": f"Bearer {admin}"})
        assert busy.status_code == 409 and busy.json()["code"] == "ai.training_under_way"
        city.db.write_sync(lambda c: release_periodic(c, training.RETRAIN_TASK, holder="runner-x"))
        # The answer comes at once; the training runs after it (the test client waits for it to end).
        started = client.post("/api/v1/ai/train", headers={"Authorization": f"Bearer {admin}"})
        assert started.status_code == 202 and started.json()["training"]["under_way"] is True
        assert started.json()["training"]["by"] == "user:admin"
        listed = client.get("/api/v1/ai/models", headers={"Authorization": f"Bearer {admin}"}).json()
        assert listed["models"][0]["state"] == "serving" and listed["models"][0]["trained_by"] == "user:admin"
        assert listed["training"]["under_way"] is False and listed["training"]["last_error"] is None
        assert listed["training"]["last_run_at"] is not None
        found = client.post("/api/v1/ai/suggest", json={"description": "小区门口路灯一直不亮"}).json()
        assert found["suggestions"][0]["code"] == "streetlight"
        assert client.post("/api/v1/ai/suggest", json={"description": "x" * 2001}).status_code in (400, 422)
        assert client.post("/api/v1/ai/suggest", json={"description": "噪音"}).status_code == 200  # the third
        assert client.post("/api/v1/ai/suggest", json={"description": "噪音"}).status_code == 429
        cards = client.get("/api/v1/ai/models", headers={"Authorization": f"Bearer {admin}"}).json()["models"]
        assert cards[0]["version"] == 1 and "per_category" in cards[0]["metrics"]
        assert client.get("/api/v1/ai/models", headers={"Authorization": f"Bearer {handler}"}).status_code == 403


def test_the_scheduled_retrain_skips_data_it_has_learnt_already(city: City) -> None:
    import asyncio

    from wecity.ai.wiring import retrain
    from wecity.core.assemble import build_context

    _add_cases(city, _history(random.Random(5), per_category=6))
    ctx = build_context(city.settings, db=city.db, clock=city.clock)

    def versions() -> list[tuple[int, str]]:
        return city.db.read_sync(lambda c: [tuple(r) for r in c.execute(
            sa.select(ai_models.c.version, ai_models.c.state).order_by(ai_models.c.version))])

    asyncio.run(retrain(ctx))
    assert versions() == [(1, "serving")]
    asyncio.run(retrain(ctx))  # nothing new: no version 2
    assert versions() == [(1, "serving")]
    _add_cases(city, [("garbage", "小区门口垃圾三天没人收")])
    asyncio.run(retrain(ctx))
    assert [v for v, _ in versions()] == [1, 2]


def test_administrators_see_the_model_cards(city: City) -> None:
    from ..web.conftest import log_in

    _add_cases(city, _history(random.Random(6), per_category=6))
    with make_client(city) as client:
        log_in(client, "chengguan")
        assert client.get("/staff/ai").status_code == 403
    _train(city)
    with make_client(city) as client:
        log_in(client, "admin")
        zh = client.get("/staff/ai", headers={"Accept-Language": "zh-CN"}).text
        assert 'id="model-v1"' in zh and "在用" in zh and "macro-F1" in zh and "井盖缺失/破损" in zh
        assert "方法" in zh and "3 折交叉验证" in zh
        en = client.get("/staff/ai", headers={"Accept-Language": "en"}).text
        assert "Serving" in en and "F1 per category" in en
        method = en.split('id="method-v1">', 1)[1].split("</p>", 1)[0]
        assert method.startswith("Method: ") and "chosen by 3-fold cross-validation" in method
        assert any(name in method for name in ("linear SVM", "NB-SVM", "nearest reports"))


def test_administrators_train_from_the_page_and_see_it_under_way_or_failed(city: City, monkeypatch: Any) -> None:
    from ..web.conftest import csrf_token, log_in

    _add_cases(city, _history(random.Random(7), per_category=6))
    with make_client(city) as client:
        anonymous = client.post("/staff/ai/train", data={"csrf_token": "0" * 64}, follow_redirects=False)
        assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login?")
        log_in(client, "chengguan")
        token = csrf_token(client.get("/staff/me").text)
        refused = client.post("/staff/ai/train", data={"csrf_token": token}, follow_redirects=False)
        assert refused.status_code == 403 and not city.db.read_sync(training.model_cards)
    with make_client(city) as client:
        log_in(client, "admin")
        page = client.get("/staff/ai", headers={"Accept-Language": "zh-CN"}).text
        assert 'id="train-now"' in page and "立即训练新版本" in page
        stale = client.post("/staff/ai/train", data={"csrf_token": "0" * 64}, follow_redirects=False)
        assert stale.status_code == 403 and not city.db.read_sync(training.model_cards)
        started = client.post("/staff/ai/train", data={"csrf_token": csrf_token(page)}, follow_redirects=False)
        assert started.status_code == 303 and started.headers["location"] == "/staff/ai?started=1"
        cards = city.db.read_sync(training.model_cards)
        assert [(c["version"], c["trained_by"]) for c in cards] == [(1, "user:admin")]
        ended = client.get("/staff/ai?started=1", headers={"Accept-Language": "en"}).text
        assert 'id="training-started"' in ended and 'id="model-v1"' in ended
        # While the daily retrain holds the task, the page says so and offers no button; a second start is 409.
        held = city.db.write_sync(lambda c: hold_periodic(c, training.RETRAIN_TASK, now=city.clock.now(),
                                                          holder="runner:host:1:abc", lease_seconds=600))
        assert held
        busy = client.get("/staff/ai", headers={"Accept-Language": "en"}).text
        assert 'id="training-under-way"' in busy and "the daily retrain" in busy and 'id="train-now"' not in busy
        refused = client.post("/staff/ai/train", data={"csrf_token": csrf_token(busy)}, follow_redirects=False)
        assert refused.status_code == 409 and 'id="training-error"' in refused.text
        city.db.write_sync(lambda c: release_periodic(c, training.RETRAIN_TASK, holder="runner:host:1:abc"))

        # A training that fails gives the task back and says why on the page.
        def broken(data: Any, var_dir: Any) -> Any:
            raise RuntimeError("disk full")

        monkeypatch.setattr(training, "fit", broken)
        page = client.get("/staff/ai").text
        client.post("/staff/ai/train", data={"csrf_token": csrf_token(page)}, follow_redirects=False)
        failed = client.get("/staff/ai?started=1", headers={"Accept-Language": "en"}).text
        assert 'id="training-failed"' in failed and "RuntimeError: disk full" in failed
        assert 'id="training-started"' not in failed and 'id="train-now"' in failed
        assert len(city.db.read_sync(training.model_cards)) == 1


def test_a_new_city_starts_from_its_imported_history(city: City, tmp_path: Any) -> None:
    import csv

    path = tmp_path / "history.csv"
    rng = random.Random(8)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["标题", "内容", "类别", "纬度", "经度", "时间"])
        for code, text in _history(rng, per_category=8):
            writer.writerow([text[:6], text, code, "28.19", "112.97", "2025-06-01 09:30"])
        writer.writerow(["", "", "manhole", "", "", ""])          # no text
        writer.writerow(["井盖", "井盖", "", "", "", ""])          # no label
    counts = city.db.write_sync(lambda c: training.import_history(
        c, path, text=["标题", "内容"], label="类别", lat="纬度", long="经度", time="时间", now=city.clock.now()))
    assert counts["imported"] == 14 * 8 - counts["repeated"] and counts["without_text"] == 1
    assert counts["without_label"] == 1
    card = _train(city)  # the city has no case yet: the history is what it learns from
    assert card["state"] == "serving" and card["rows_holdout"] >= 0.19 * counts["imported"]
    cache = ModelCache()
    top = city.db.read_sync(lambda c: suggest(c, cache, city.settings.var_dir, "晚上路灯全都不亮"))
    assert top["suggestions"][0]["code"] == "streetlight"
    # A label that is no category of the city: nothing is imported.
    bad = tmp_path / "bad.csv"
    bad.write_text("text,label\n井盖丢了,no-such-category\n", encoding="utf-8")
    import pytest

    from wecity.core.errors import ValidationFailed
    with pytest.raises(ValidationFailed, match="no-such-category"):
        city.db.write_sync(lambda c: training.import_history(c, bad, text=["text"], label="label", now=city.clock.now()))


def test_a_report_the_city_sorts_is_routed_by_confidence_and_counted(city: City) -> None:
    """"Not sure": a clear description is filed under the model's first choice automatically; a vague one
    goes to the dispatch centre (category other); both are on the case's timeline and counted."""
    from wecity.cases.models import timeline

    from ..web.conftest import csrf_token

    _add_cases(city, _history(random.Random(9)))
    _train(city)

    def send(client: Any, description: str) -> int:
        form = client.get("/report", headers={"Accept-Language": "zh-CN"}).text
        answer = client.post("/report", follow_redirects=False, data={
            "csrf_token": csrf_token(form), "service_code": "__auto", "description": description,
            "lat": "28.196", "long": "112.977"})
        assert answer.status_code == 303, answer.text[-500:]
        return int(city.db.read_sync(lambda c: c.execute(sa.select(sa.func.max(cases.c.id))).scalar_one()))

    with make_client(city) as client:
        assert "由系统根据我的描述判断类别" in client.get("/report", headers={"Accept-Language": "zh-CN"}).text
        clear = send(client, "小区门口路灯连续三晚不亮，晚上很黑")
        vague = send(client, "你好")
        empty_form = client.get("/report").text
        refused = client.post("/report", data={"csrf_token": csrf_token(empty_form), "service_code": "__auto",
                                               "description": "", "lat": "28.196", "long": "112.977"})
        assert refused.status_code == 400
        # A back office that does not know the city's codes: Open311 with service_code=auto.
        by_api = client.post("/open311/v2/requests.json", data={
            "api_key": city.api_key, "service_code": "auto", "lat": "28.196", "long": "112.977",
            "description": "路灯坏了，整条路晚上都不亮"})
        assert by_api.status_code == 200, by_api.text
        from_api = int(by_api.json()[0]["service_request_id"])
        no_text = client.post("/open311/v2/requests.json", data={
            "api_key": city.api_key, "service_code": "auto", "lat": "28.196", "long": "112.977"})
        assert no_text.status_code == 400 and "description" in no_text.text

    def routed(c: sa.Connection, case_id: int) -> tuple[str, dict[str, Any]]:
        code = c.execute(sa.select(cases.c.category_code).where(cases.c.id == case_id)).scalar_one()
        detail = c.execute(sa.select(timeline.c.detail).where(timeline.c.case_id == case_id,
                                                              timeline.c.event == "submitted")).scalar_one()
        return code, detail["routing"]

    code, record = city.db.read_sync(lambda c: routed(c, clear))
    assert code == "streetlight" and record["route"] == "automatic" and record["probability"] >= 0.6
    code, record = city.db.read_sync(lambda c: routed(c, vague))
    assert code == "other" and record["route"] == "dispatch_centre"
    admin = city.db.write_sync(lambda c: start_session(c, c.execute(sa.select(users.c.id).where(
        users.c.username == "admin")).scalar_one(), city.clock.now()))
    with make_client(city) as client:
        counts = client.get("/api/v1/ai/routing", headers={"Authorization": f"Bearer {admin}"}).json()
    code, record = city.db.read_sync(lambda c: routed(c, city.db.read_sync(lambda c2: c2.execute(
        sa.select(reports.c.case_id).where(reports.c.id == from_api)).scalar_one())))
    assert code == "streetlight" and record["route"] == "automatic"
    assert (counts["automatic"], counts["dispatch_centre"]) == (2, 1)
    assert counts["by_channel"] == {"portal": {"automatic": 1, "dispatch_centre": 1},
                                    "open311": {"automatic": 1, "dispatch_centre": 0}}
    assert counts["automatic_refiled_by_staff"] == 0
    # Staff re-file one automatic route; counted in slices of ids (a year of a big city binds too many at once).
    dispatcher = city.db.read_sync(lambda c: get_user(c, c.execute(sa.select(users.c.id).where(
        users.c.username == "dispatcher")).scalar_one()))
    assert dispatcher is not None
    city.db.write_sync(lambda c: engine.recategorise(c, clear, "noise", engine.Actor.staff(dispatcher),
                                                     city.clock.now(), note="是噪音"))
    from wecity.ai import suggest as suggesting

    for size in (1, 10_000):
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(suggesting, "ID_SLICE", size)
            refiled = city.db.read_sync(lambda c: suggesting.routing_counts(c, since=city.clock.now() - timedelta(1)))
        assert refiled["automatic_refiled_by_staff"] == 1, size


def test_the_held_back_cases_are_the_same_in_every_training() -> None:
    """The serving model is graded beside the new one on the held-back cases: those must be cases neither
    learnt from, so a case held back once is held back in every later training, whatever came in since."""
    labels = ["a", "b", "c"] * 200
    keys = [f"case:{i}" for i in range(600)]
    first_train, first_back = training.held_back(keys[:450], labels[:450])
    later_train, later_back = training.held_back(keys, labels)
    learnt_first = {keys[i] for i in first_train}
    assert {keys[i] for i in later_back}.isdisjoint(learnt_first)
    assert {keys[i] for i in first_back} <= {keys[i] for i in later_back}
    assert 0.15 < len(later_back) / len(keys) < 0.25
    # A category whose every row falls in the held-back fifth is learnt from instead.
    lone = [k for k in keys if k not in {keys[i] for i in later_train}][:2]
    trained, back = training.held_back([*keys[:30], *lone], [*labels[:30], "new", "new"])
    assert {30, 31} <= set(trained.tolist()) and not {30, 31} & set(back.tolist())


def test_model_files_nothing_will_load_are_removed(city: City) -> None:
    """Every training writes a file of tens of megabytes: a rejected version's goes, and of the versions
    that served before only the newest is kept (a process may still be loading it)."""
    _add_cases(city, _history(random.Random(8), per_category=6))
    first = _train(city)
    _add_cases(city, [("garbage", "小区门口垃圾三天没人收")])
    second = _train(city)
    _add_cases(city, [("garbage", "楼下垃圾桶满了没人清")])
    third = _train(city)
    cards = {c["version"]: c for c in (first, second, third)}
    on_disk = {v for v, c in cards.items() if (city.settings.var_dir / c["file"]).exists()}
    states = {v: c["state"] for v, c in cards.items()}
    serving = max(v for v, s in states.items() if s == "serving")
    retired = sorted(v for v, s in city.db.read_sync(lambda c: c.execute(
        sa.select(ai_models.c.version, ai_models.c.state)).all()) if s == "retired")
    assert serving in on_disk
    assert on_disk == {serving, *retired[-1:]}
    assert not list((city.settings.var_dir / training.MODELS_DIR).glob("*.tmp"))  # renamed, none left behind


def test_recording_a_version_can_run_again_after_a_rollback(city: City) -> None:
    """SQLite's grouped commits run a failed group's writes again one by one: recording a trained model must
    find everything as it was the first time (it once renamed the file and then found it gone)."""
    import pytest

    _add_cases(city, _history(random.Random(9), per_category=6))
    var_dir = city.settings.var_dir
    candidate = training.fit(city.db.read_sync(training.collect), var_dir)

    def fails_after(conn: sa.Connection) -> None:
        training.decide(conn, candidate, var_dir=var_dir, now=city.clock.now(), by="test")
        raise RuntimeError("another write of the group failed")

    with pytest.raises(RuntimeError):
        city.db.write_sync(fails_after)
    card = city.db.write_sync(lambda c: training.decide(c, candidate, var_dir=var_dir, now=city.clock.now(), by="test"))
    assert card["version"] == 1 and card["state"] == "serving"
    row = city.db.read_sync(training.serving)
    assert training.load_model(var_dir, row).top_k(["路灯不亮"], k=1)


def test_a_retired_category_is_neither_suggested_nor_learnt(city: City, monkeypatch: Any) -> None:
    """A category the city stops taking leaves the suggestions within seconds (not at the next model), and
    the next model does not learn it from its old cases: routing never picks a category intake refuses."""
    from wecity.ai import suggest as suggesting

    _add_cases(city, _history(random.Random(11)))
    _train(city)
    cache = ModelCache()
    text = "中山路井盖被偷了，很危险"

    def first(c: sa.Connection) -> str:
        return str(suggest(c, cache, city.settings.var_dir, text)["suggestions"][0]["code"])

    assert city.db.read_sync(first) == "manhole"
    city.db.write_sync(lambda c: c.execute(categories.update().where(categories.c.code == "manhole")
                                           .values(active=False)))
    assert city.db.read_sync(first) == "manhole"  # the categories are read again every CATEGORIES_TTL seconds
    monkeypatch.setattr(suggesting, "CATEGORIES_TTL", 0.0)
    assert city.db.read_sync(first) != "manhole"
    texts, labels = city.db.read_sync(training.training_rows)
    assert "manhole" not in labels and texts


def test_a_serving_model_whose_file_is_lost_stops_nothing(city: City, caplog: Any) -> None:
    """A missing or cut-short file (a disk restored without it, a crash): suggestions are empty and reports go
    to the dispatch centre, logged, not a 500 for every report; the next training replaces it."""
    from wecity.ai.suggest import route

    _add_cases(city, _history(random.Random(12)))
    first = _train(city)
    (city.settings.var_dir / first["file"]).write_bytes(b"cut sho")
    cache = ModelCache()
    answer = city.db.read_sync(lambda c: suggest(c, cache, city.settings.var_dir, "中山路井盖被偷了"))
    assert answer["suggestions"] == [] and answer["route"] == "dispatch_centre"
    code, record = city.db.read_sync(lambda c: route(c, cache, city.settings.var_dir, "中山路井盖被偷了",
                                                     channel="portal"))
    assert code == "other" and record["route"] == "dispatch_centre"
    assert "cannot be read" in caplog.text
    _add_cases(city, [("manhole", "井盖又丢了一个")])  # new data: the retrain is not skipped as unchanged
    second = _train(city)
    assert second["state"] == "serving" and second["replaced"] == 1
    assert second["serving_metrics"]["unreadable"] is True


def test_a_model_row_naming_another_file_is_not_loaded(city: City, tmp_path: Any) -> None:
    """pickle runs what it reads: a row changed to name any other file (a path out of the models directory,
    an absolute one) is refused before anything is opened."""
    import pytest

    evil = tmp_path / "category-0123456789abcdef0123456789abcdef.pkl"
    evil.write_bytes(b"not read")
    for name in (str(evil), "../../etc/passwd", "ai/models/../../x.pkl", "ai/models/other.pkl"):
        row = type("Row", (), {"version": 9, "file": name})()
        with pytest.raises(training.ModelUnavailable, match="not a model file"):
            training.load_model(city.settings.var_dir, row)
    # the names versions had before (category-v<n>.pkl) are still the platform's own: read (here: missing)
    with pytest.raises(training.ModelUnavailable, match="cannot be read"):
        training.load_model(city.settings.var_dir, type("Row", (), {"version": 3, "file": "ai/models/category-v3.pkl"})())

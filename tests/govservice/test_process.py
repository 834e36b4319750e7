"""The standard and simple approval processes, walked through the stateless adapter.

Each step goes through JSON text only, as the caller's table will hold it, so every test also proves
the state survives serialise and restore between steps.
"""

from __future__ import annotations

import json
from importlib import resources

import pytest

from wecity.core.errors import Conflict, NotFound, ValidationFailed
from wecity.govservice import process
from wecity.govservice.process import ReadyTask

REVIEWERS = ["urban", "traffic"]


def only(state: str) -> ReadyTask:
    tasks = process.ready_tasks(state)
    assert len(tasks) == 1, tasks
    return tasks[0]


def waiting(state: str) -> list[tuple[str, str | None, str | None]]:
    return [(task.name, task.lane, task.reviewer) for task in process.ready_tasks(state)]


def answer(state: str, name: str, data: dict[str, object]) -> str:
    task = only(state)
    assert task.name == name
    return process.complete(state, task.id, data)


def review(state: str, outcomes: dict[str, str]) -> str:
    """Every waiting review instance answers; which answers which is told by its reviewer."""
    for task in process.ready_tasks(state):
        assert task.name == "review" and task.lane == "review"
        assert task.reviewer is not None
        state = process.complete(state, task.id, {"outcome": outcomes[task.reviewer]})
    return state


def accepted(reviewers: list[str] = REVIEWERS) -> str:
    state = process.start("standard", {"reviewers": reviewers})
    return answer(state, "accept", {"outcome": "accept"})


def test_the_packaged_processes_are_named_by_their_files() -> None:
    assert process.process_names() == ["simple", "standard"]


def test_every_user_task_sits_in_its_lane() -> None:
    lanes = process.lanes("standard")
    assert {task: lanes[task] for task in ("accept", "supply", "review", "supply_review", "decide", "deliver")} == {
        "accept": "acceptance", "supply": "applicant", "review": "review",
        "supply_review": "applicant", "decide": "decision", "deliver": "decision"}
    assert "review" not in process.lanes("simple")


def test_an_application_waits_first_for_acceptance() -> None:
    state = process.start("standard", {"reviewers": REVIEWERS})
    assert json.loads(state)  # plain JSON text, ready for a column
    assert waiting(state) == [("accept", "acceptance", None)]
    assert only(state).outcomes == ("accept", "reject", "supplement")
    assert not process.is_finished(state)
    assert process.end_event(state) is None
    assert process.data(state) == {"reviewers": REVIEWERS}


def test_two_departments_review_in_parallel_then_approval_is_delivered() -> None:
    state = accepted()
    assert sorted(waiting(state)) == [("review", "review", "traffic"), ("review", "review", "urban")]

    first, second = process.ready_tasks(state)
    state = process.complete(state, first.id, {"outcome": "approve"})
    # The other department's instance still waits, under the same id, after a round trip through JSON.
    assert [(task.id, task.reviewer) for task in process.ready_tasks(state)] == [(second.id, second.reviewer)]
    state = process.complete(state, second.id, {"outcome": "approve"})

    decide = only(state)
    assert (decide.name, decide.lane, decide.outcomes) == ("decide", "decision", ("approve", "refuse"))
    assert process.data(state)["review_outcomes"] == ["approve", "approve"]
    state = process.complete(state, decide.id, {"outcome": "approve"})
    assert waiting(state) == [("deliver", "decision", None)]
    state = answer(state, "deliver", {"certificate": "EC-2026-0001"})

    assert process.is_finished(state)
    assert process.end_event(state) == "approved"
    assert process.ready_tasks(state) == []
    assert process.data(state)["certificate"] == "EC-2026-0001"


def test_supplement_at_acceptance_asks_the_applicant_then_acceptance_looks_again() -> None:
    state = process.start("standard", {"reviewers": REVIEWERS})
    state = answer(state, "accept", {"outcome": "supplement", "missing": ["site plan"]})
    assert waiting(state) == [("supply", "applicant", None)]
    state = answer(state, "supply", {"supplied": ["site plan"]})
    assert waiting(state) == [("accept", "acceptance", None)]
    assert process.data(state)["supplied"] == ["site plan"]
    state = answer(state, "accept", {"outcome": "accept"})
    assert {task.reviewer for task in process.ready_tasks(state)} == set(REVIEWERS)


def test_a_reviewer_asking_for_supplement_sends_the_applicant_back_after_the_whole_round() -> None:
    state = accepted()
    urban = next(task for task in process.ready_tasks(state) if task.reviewer == "urban")
    state = process.complete(state, urban.id, {"outcome": "supplement"})
    # The round is not cut short: traffic still reviews before the applicant is asked.
    assert waiting(state) == [("review", "review", "traffic")]
    state = review(state, {"traffic": "approve"})

    assert waiting(state) == [("supply_review", "applicant", None)]
    assert process.data(state)["review_outcomes"] == ["supplement", "approve"]
    state = answer(state, "supply_review", {"supplied": ["traffic study"]})

    # Every department reviews again, and the new round starts with no outcomes of the old one.
    assert sorted(waiting(state)) == [("review", "review", "traffic"), ("review", "review", "urban")]
    assert process.data(state)["review_outcomes"] == []
    state = review(state, {"urban": "approve", "traffic": "approve"})
    assert waiting(state) == [("decide", "decision", None)]
    assert process.data(state)["review_outcomes"] == ["approve", "approve"]


def test_a_refusal_in_review_goes_to_the_decision_which_may_refuse() -> None:
    state = review(accepted(), {"urban": "refuse", "traffic": "approve"})
    assert sorted(process.data(state)["review_outcomes"]) == ["approve", "refuse"]
    state = answer(state, "decide", {"outcome": "refuse"})
    assert process.is_finished(state)
    assert process.end_event(state) == "refused"


def test_with_no_reviewers_the_review_passes_straight_to_the_decision() -> None:
    state = accepted(reviewers=[])
    assert waiting(state) == [("decide", "decision", None)]
    assert process.data(state)["review_outcomes"] == []


def test_rejection_at_acceptance_ends_not_accepted() -> None:
    state = process.start("standard", {"reviewers": REVIEWERS})
    state = answer(state, "accept", {"outcome": "reject", "reason": "not this office's matter"})
    assert process.is_finished(state)
    assert process.end_event(state) == "not_accepted"
    assert process.data(state)["reason"] == "not this office's matter"


def test_the_simple_process_goes_from_acceptance_to_decision() -> None:
    state = process.start("simple", {})
    state = answer(state, "accept", {"outcome": "supplement"})
    state = answer(state, "supply", {})
    state = answer(state, "accept", {"outcome": "accept"})
    assert waiting(state) == [("decide", "decision", None)]
    state = answer(state, "decide", {"outcome": "approve"})
    state = answer(state, "deliver", {})
    assert process.end_event(state) == "approved"


def test_the_simple_process_can_refuse() -> None:
    state = answer(process.start("simple", {}), "accept", {"outcome": "accept"})
    state = answer(state, "decide", {"outcome": "refuse"})
    assert process.end_event(state) == "refused"


def test_a_task_that_is_not_waiting_cannot_be_completed() -> None:
    state = process.start("standard", {"reviewers": REVIEWERS})
    accept = only(state)
    later = process.complete(state, accept.id, {"outcome": "accept"})
    with pytest.raises(Conflict) as raised:
        process.complete(later, accept.id, {"outcome": "accept"})
    assert raised.value.code == "govservice.task_not_ready"
    with pytest.raises(Conflict):
        process.complete(state, "00000000-0000-0000-0000-000000000000", {"outcome": "accept"})
    with pytest.raises(ValidationFailed) as malformed:
        process.complete(state, "accept", {"outcome": "accept"})
    assert malformed.value.code == "govservice.bad_task_id"


def test_an_outcome_the_task_does_not_know_is_refused_and_the_state_is_unchanged() -> None:
    state = process.start("standard", {"reviewers": REVIEWERS})
    accept = only(state)
    with pytest.raises(ValidationFailed) as raised:
        process.complete(state, accept.id, {"outcome": "approve"})
    assert raised.value.code == "govservice.bad_outcome"
    assert "accept、reject、supplement" in raised.value.message_zh
    with pytest.raises(ValidationFailed):
        process.complete(state, accept.id, {})
    assert only(state) == accept


def test_a_review_outcome_is_checked_per_instance() -> None:
    state = accepted()
    with pytest.raises(ValidationFailed) as raised:
        process.complete(state, process.ready_tasks(state)[0].id, {"outcome": "maybe"})
    assert raised.value.details == {"allowed": ["approve", "refuse", "supplement"]}


def test_a_stale_outcome_is_never_taken_for_a_new_answer() -> None:
    state = process.start("standard", {"reviewers": REVIEWERS})
    state = answer(state, "accept", {"outcome": "supplement"})
    with pytest.raises(ValidationFailed) as raised:
        answer(state, "supply", {"outcome": "accept"})
    assert raised.value.code == "govservice.unexpected_outcome"
    state = answer(state, "supply", {})
    # Acceptance's earlier "supplement" is still in the data; acceptance must answer afresh.
    with pytest.raises(ValidationFailed):
        answer(state, "accept", {})


def test_the_standard_process_needs_its_reviewers_to_start() -> None:
    with pytest.raises(ValidationFailed) as raised:
        process.start("standard", {})
    assert raised.value.code == "govservice.missing_data"
    assert raised.value.details == {"missing": ["reviewers"]}


@pytest.mark.parametrize("data", [
    {"__builtins__": {}},
    {"_hidden": 1},
    {"not a name": 1},
    {"when": float("nan")},
    {"when": object()},
])
def test_data_must_be_plain_json_under_plain_names(data: dict[str, object]) -> None:
    with pytest.raises(ValidationFailed) as raised:
        process.start("simple", data)
    assert raised.value.code == "govservice.bad_data"


def test_an_unknown_process_is_not_found() -> None:
    with pytest.raises(NotFound) as raised:
        process.start("express", {})
    assert raised.value.code == "govservice.unknown_process"


def test_a_state_that_is_not_one_is_refused() -> None:
    with pytest.raises(ValidationFailed) as raised:
        process.ready_tasks('{"not": "a workflow"}')
    assert raised.value.code == "govservice.bad_state"


def test_the_packaged_definitions_validate() -> None:
    for name in process.process_names():
        xml = (resources.files("wecity.govservice") / "processes" / f"{name}.bpmn").read_bytes()
        process.validate_definition(xml)


@pytest.mark.parametrize("xml", [
    b"<not-bpmn/>",
    b"<bpmn:definitions xmlns:bpmn='http://www.omg.org/spec/BPMN/20100524/MODEL'",
    # An exclusive gateway's flow with neither a condition nor the default.
    b"""<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="t">
      <bpmn:process id="p" isExecutable="true">
        <bpmn:startEvent id="s"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
        <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="g" />
        <bpmn:exclusiveGateway id="g"><bpmn:incoming>f1</bpmn:incoming>
          <bpmn:outgoing>f2</bpmn:outgoing><bpmn:outgoing>f3</bpmn:outgoing></bpmn:exclusiveGateway>
        <bpmn:sequenceFlow id="f2" sourceRef="g" targetRef="e" />
        <bpmn:sequenceFlow id="f3" sourceRef="g" targetRef="e">
          <bpmn:conditionExpression>outcome == "x"</bpmn:conditionExpression></bpmn:sequenceFlow>
        <bpmn:endEvent id="e"><bpmn:incoming>f2</bpmn:incoming><bpmn:incoming>f3</bpmn:incoming></bpmn:endEvent>
      </bpmn:process>
    </bpmn:definitions>""",
])
def test_a_definition_that_does_not_parse_is_refused(xml: bytes) -> None:
    with pytest.raises(ValidationFailed) as raised:
        process.validate_definition(xml)
    assert raised.value.code == "govservice.bad_definition"

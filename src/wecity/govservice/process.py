"""Each matter's approval process as a BPMN 2.0 definition run by SpiffWorkflow, stateless over JSON text.

Every verb takes the workflow state (JSON text), does one thing and returns the new state; the caller
keeps the state in its own table. Nothing here touches a database.

    start("standard", {"reviewers": ["urban", "traffic"]})  -> state, waiting at `accept`
    ready_tasks(state)                                      -> [ReadyTask(id, "accept", "acceptance", None)]
    complete(state, task_id, {"outcome": "accept"})         -> new state, waiting at the reviews

A deciding task lists the answers it takes in its BPMN property `outcomes` (``accept reject supplement``);
completing it needs ``{"outcome": <one of them>}``, and any other task refuses an `outcome`, so a stale
answer inherited from an earlier task can never be taken for a new one. A start event's property
`requires` names the data `start` must be given (``reviewers`` for the standard process).

Trust: Spiff's script engine runs BPMN conditions and scripts with Python's `eval` / `exec`, the task
data as their globals. So a definition is code. Only the definitions packaged in
`wecity/govservice/processes/` are started here; a city that adds a definition of its own is trusted like
code (check it with `validate_definition`, review it like a patch). The state carries a copy of its
definition, scripts included, so that an application finishes under the process it began with: the
state column is trusted like code too, written only through these verbs and never taken from a client.
Data from the outside is plain JSON under plain names (identifiers not starting with ``_``), so it can
neither carry code nor reach Python's builtins.
"""

from __future__ import annotations

import functools
import json
import re
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from importlib import resources
from typing import Any

from SpiffWorkflow.bpmn.serializer.workflow import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.specs.bpmn_process_spec import BpmnProcessSpec
from SpiffWorkflow.bpmn.specs.mixins.events.end_event import EndEvent
from SpiffWorkflow.bpmn.specs.mixins.events.start_event import StartEvent
from SpiffWorkflow.bpmn.specs.mixins.multiinstance_task import MultiInstanceTask
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.exceptions import SpiffWorkflowException
from SpiffWorkflow.spiff.parser.process import VALIDATOR, SpiffBpmnParser
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState

from wecity.core.errors import Conflict, NotFound, ValidationFailed

OUTCOME = "outcome"
_PLAIN_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")


@dataclass(frozen=True)
class ReadyTask:
    """A user task waiting for someone: the applicant, or a department in its lane."""

    id: str  # the engine's task id, stable across serialise and restore
    name: str  # the BPMN task id: "accept", "review", "supply" ...
    lane: str | None  # "acceptance" / "review" / "decision" / "applicant"
    reviewer: str | None  # for an instance of a multi-instance review: that instance's department code
    outcomes: tuple[str, ...]  # the answers the task takes as `outcome`; empty for tasks that decide nothing


def process_names() -> list[str]:
    """The packaged definitions, by name: each is `processes/<name>.bpmn`, whose process id is <name>."""
    return sorted(entry.name.removesuffix(".bpmn") for entry in _definitions_folder().iterdir()
                  if entry.name.endswith(".bpmn"))


def start(process: str, data: dict[str, Any]) -> str:
    """Start an instance of a packaged process with `data` and run it to its first wait."""
    plain = _plain_data(data)
    spec = _parsed(process)
    missing = [name for name in _start_requires(spec) if name not in plain]
    if missing:
        raise ValidationFailed(f"Process {process!r} needs {', '.join(missing)} to start.",
                               message_zh=f"流程 {process!r} 启动时须提供：{'、'.join(missing)}。",
                               code="govservice.missing_data", details={"missing": missing})
    with _START_LOCK:
        # Spiff wires a multi-instance task's children to their parent through events on the spec it
        # runs; the parsed spec is shared, so two starts must not wire it at once.
        workflow = BpmnWorkflow(spec)
        for task in workflow.get_tasks(state=TaskState.READY):
            task.data.update(plain)
        _run_engine(workflow)
        state = str(_serializer().serialize_json(workflow))
    _remember(state, workflow)
    return state


@dataclass(frozen=True)
class Snapshot:
    """What a state says, read once: finished or not, at which end, and the tasks waiting."""

    finished: bool
    end_event: str | None
    ready: tuple[ReadyTask, ...]


# Readings of recent states, newest last. A state is immutable text, so its reading never goes stale; a
# step asks about the state it just made several times, and restoring a state is the engine's costliest part.
_SNAPSHOTS: OrderedDict[str, Snapshot] = OrderedDict()
_SNAPSHOTS_KEPT = 512
_SNAPSHOTS_LOCK = threading.Lock()


def snapshot(state: str) -> Snapshot:
    """What `state` says: read once, then kept."""
    with _SNAPSHOTS_LOCK:
        found = _SNAPSHOTS.get(state)
    if found is None:
        found = _remember(state, _restore(state))
    return found


def _remember(state: str, workflow: BpmnWorkflow) -> Snapshot:
    if workflow.is_completed():
        ends = workflow.get_tasks(state=TaskState.COMPLETED, spec_class=EndEvent)
        reading = Snapshot(True, str(ends[-1].task_spec.bpmn_id) if ends else None, ())
    else:
        reading = Snapshot(False, None, tuple(_ready_task(task) for task in _waiting(workflow)))
    with _SNAPSHOTS_LOCK:
        _SNAPSHOTS[state] = reading
        if len(_SNAPSHOTS) > _SNAPSHOTS_KEPT:
            _SNAPSHOTS.popitem(last=False)
    return reading


def ready_tasks(state: str) -> list[ReadyTask]:
    """The user tasks waiting now, in the engine's order."""
    return list(snapshot(state).ready)


def complete(state: str, task_id: str, data: dict[str, Any]) -> str:
    """Complete one ready user task with `data`, run the engine to its next wait, and return the new state.

    An instance of a multi-instance review hands on only its `outcome` (into `review_outcomes`); the rest
    of its data stays with the instance, so one department's answer cannot overwrite another's. A
    department's opinion belongs in the caller's own records, keyed by the ReadyTask's reviewer."""
    workflow = _restore(state)
    task = _ready_by_id(workflow, task_id)
    plain = _plain_data(data)
    _check_outcome(task, plain)
    task.data.update(plain)
    try:
        task.run()
    except SpiffWorkflowException as error:
        raise _engine_error(error) from error
    _run_engine(workflow)
    state = str(_serializer().serialize_json(workflow))
    _remember(state, workflow)
    return state


def is_finished(state: str) -> bool:
    return snapshot(state).finished


def end_event(state: str) -> str | None:
    """The BPMN id of the end event the instance finished at ("approved", "refused" ...); None while running."""
    return snapshot(state).end_event


def data(state: str) -> dict[str, Any]:
    """The process data as the next step sees it (all of it, once finished), as plain JSON."""
    workflow = _restore(state)
    if workflow.is_completed():
        return _json_copy(workflow.data)
    waiting = _waiting(workflow)
    if not waiting:
        return {}
    task = waiting[0]
    if _is_instance(task):
        # An instance's own data holds its reviewer; the process's data is the round's, on the parent.
        task = task.parent
    return _json_copy(task.data)


def lanes(process: str) -> dict[str, str]:
    """BPMN task id -> lane name, for every node of a packaged process that sits in a lane."""
    return {spec.bpmn_id: spec.lane for spec in _parsed(process).task_specs.values()
            if getattr(spec, "bpmn_id", None) and getattr(spec, "lane", None)}


def validate_definition(xml: bytes) -> None:
    """Check that a definition is valid BPMN 2.0 (with Spiff's extensions) and that each process parses.

    Passing says nothing about safety: scripts and conditions in it run as Python (see the module's
    docstring)."""
    parser = SpiffBpmnParser(validator=VALIDATOR)
    try:
        parser.add_bpmn_str(xml, filename="definition.bpmn")
        for process_id in parser.get_process_ids():
            parser.get_spec(process_id)
    except Exception as error:  # lxml's XMLSyntaxError, Spiff's ValidationException and what the parser trips on
        raise _definition_error("definition.bpmn", error) from error


# --- the packaged definitions, parsed once each -------------------------------------------------------------

_START_LOCK = threading.Lock()


def _definitions_folder() -> Any:
    return resources.files("wecity.govservice").joinpath("processes")


@functools.cache
def _parsed(process: str) -> BpmnProcessSpec:
    if process not in process_names():
        raise NotFound(f"No process named {process!r}; there are {', '.join(process_names())}.",
                       message_zh=f"没有名为 {process!r} 的流程；现有流程：{'、'.join(process_names())}。",
                       code="govservice.unknown_process")
    filename = f"{process}.bpmn"
    parser = SpiffBpmnParser(validator=VALIDATOR)
    try:
        parser.add_bpmn_str(_definitions_folder().joinpath(filename).read_bytes(), filename=filename)
        spec = parser.get_spec(process)
    except Exception as error:
        raise _definition_error(filename, error) from error
    return spec


@functools.cache
def _serializer() -> BpmnWorkflowSerializer:
    return BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(SPIFF_CONFIG))


# --- state ----------------------------------------------------------------------------------------------------

def _restore(state: str) -> BpmnWorkflow:
    try:
        return _serializer().deserialize_json(state)
    except Exception as error:  # json's, and Spiff's KeyError/TypeError on a dict of the wrong shape
        raise ValidationFailed("The workflow state cannot be read.", message_zh="无法读取流程状态。",
                               code="govservice.bad_state", details={"reason": str(error)}) from error


def _run_engine(workflow: BpmnWorkflow) -> None:
    try:
        workflow.do_engine_steps()
    except SpiffWorkflowException as error:
        raise _engine_error(error) from error


def _waiting(workflow: BpmnWorkflow) -> list[Task]:
    return list(workflow.get_tasks(state=TaskState.READY, manual=True))


def _ready_by_id(workflow: BpmnWorkflow, task_id: str) -> Task:
    try:
        wanted = uuid.UUID(task_id)
    except (ValueError, TypeError, AttributeError) as error:
        raise ValidationFailed(f"{task_id!r} is not a task id.", message_zh=f"{task_id!r} 不是任务编号。",
                               code="govservice.bad_task_id") from error
    for task in _waiting(workflow):
        if task.id == wanted:
            return task
    raise Conflict(f"Task {task_id} is not waiting to be completed.", message_zh=f"任务 {task_id} 当前不可办理。",
                   code="govservice.task_not_ready")


def _is_instance(task: Task) -> bool:
    return task.parent is not None and isinstance(task.parent.task_spec, MultiInstanceTask)


def _listed(task_spec: Any, name: str) -> tuple[str, ...]:
    """A space-separated list in one of a BPMN node's Spiff properties: `outcomes`, `requires`."""
    properties = getattr(task_spec, "extensions", {}).get("properties", {})
    return tuple(properties.get(name, "").split())


def _outcomes(task: Task) -> tuple[str, ...]:
    return _listed(task.task_spec, "outcomes")


def _start_requires(spec: BpmnProcessSpec) -> tuple[str, ...]:
    """What the start events' property `requires` names: data without which the process cannot run."""
    return tuple(name for task_spec in spec.task_specs.values() if isinstance(task_spec, StartEvent)
                 for name in _listed(task_spec, "requires"))


def _ready_task(task: Task) -> ReadyTask:
    reviewer = task.data.get("reviewer") if _is_instance(task) else None
    return ReadyTask(id=str(task.id), name=task.task_spec.bpmn_id, lane=task.task_spec.lane,
                     reviewer=None if reviewer is None else str(reviewer), outcomes=_outcomes(task))


def _check_outcome(task: Task, data: dict[str, Any]) -> None:
    outcomes = _outcomes(task)
    name = task.task_spec.bpmn_id
    if not outcomes:
        if OUTCOME in data:
            raise ValidationFailed(f"Task {name!r} decides nothing and takes no outcome.",
                                   message_zh=f"任务 {name!r} 不作决定，不接受办理结果。",
                                   code="govservice.unexpected_outcome")
        return
    if data.get(OUTCOME) not in outcomes:
        raise ValidationFailed(
            f"Task {name!r} needs an outcome, one of {', '.join(outcomes)}; got {data.get(OUTCOME)!r}.",
            message_zh=f"任务 {name!r} 的办理结果须为 {'、'.join(outcomes)} 之一，收到 {data.get(OUTCOME)!r}。",
            code="govservice.bad_outcome", details={"allowed": list(outcomes)})


# --- data from the outside -----------------------------------------------------------------------------------

def _plain_data(data: dict[str, Any]) -> dict[str, Any]:
    """A copy of `data` as plain JSON under plain names, or ValidationFailed."""
    if not isinstance(data, dict):
        raise _bad_data("the data is not an object")
    for key in data:
        # Names become Python globals of the engine's expressions: `__builtins__` would replace the
        # builtins, and anything odd is no name a definition can use anyway.
        if not isinstance(key, str) or not _PLAIN_NAME.match(key):
            raise _bad_data(f"{key!r} is not a plain name (a letter, then letters, digits, _)")
    try:
        return _json_copy(data)
    except (TypeError, ValueError) as error:
        raise _bad_data(str(error)) from error


def _json_copy(value: dict[str, Any]) -> dict[str, Any]:
    copied: dict[str, Any] = json.loads(json.dumps(value, allow_nan=False))
    return copied


def _bad_data(reason: str) -> ValidationFailed:
    return ValidationFailed(f"The process data is not plain JSON: {reason}.",
                            message_zh=f"流程数据须为纯 JSON：{reason}。", code="govservice.bad_data")


# --- errors ---------------------------------------------------------------------------------------------------

def _definition_error(filename: str, error: Exception) -> ValidationFailed:
    return ValidationFailed(f"The process definition {filename} does not parse: {error}",
                            message_zh=f"流程定义 {filename} 无法解析：{error}",
                            code="govservice.bad_definition", details={"file": filename})


def _engine_error(error: SpiffWorkflowException) -> ValidationFailed:
    # The state the caller holds is untouched (each verb works on its own copy), so the step simply did
    # not happen; the usual cause is data the definition needs and did not get, e.g. no `reviewers`.
    return ValidationFailed(f"The process cannot go on with this data: {error}",
                            message_zh=f"流程无法依此数据继续：{error}", code="govservice.engine_refused")

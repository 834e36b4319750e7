"""Duplicate reports (并单) by what they say and show, beyond the exact rule of intake.

Intake folds a report into an open case of the same category within 50 m and 72 hours
(`wecity.cases.intake`). People also report one problem further apart (the pin on the corner, not on the
manhole), under another category (a sunken manhole filed as a pothole), or a few days on. This module finds
such pairs moments after intake (the runner's `ai.duplicates` job, never on the request's path): for each
new case, the open cases opened up to `WINDOW` before it within `RADIUS_M`, each scored from four parts:

- **text**: the cosine of the two cases' descriptions as counts of character bigrams and ICU words
  (`wecity.ai.tokens`), so Chinese and English need nothing of their own; 1 for the same words.
- **photo**: where both cases have photos, 1 − Hamming distance / 64 of the closest pair of their perceptual
  hashes (`wecity.media.images.perceptual_hash`). Unrelated photos come out near 0.5 (half the bits
  differ); photos of one scene, re-taken or re-encoded, above 0.85.
- **place**: 1 − distance / `RADIUS_M`.
- **category**: the same category or not.

Each part is evidence that the two are one problem, and the score combines them as independent pieces of
evidence do (a "noisy or"): 1 − (1 − 0.9·photo′)(1 − 0.7·text)(1 − 0.3·category)(1 − 0.2·place), where
photo′ rises from 0 at chance (0.5) to 1 at a match (`PHOTO_MATCH`). Without photos the score rests on the
text, the category and the place. A pair scoring `PROPOSE` or more is proposed to dispatchers on the
case's page, with its parts. The platform merges only on a photo's evidence: the photos match, the cases
lie within `AUTO_RADIUS_M`, and they are of one category or department or their texts share something (the
same street corner photographed for a pile of rubbish and for a parked car is two problems). Short
template texts ("路灯不亮") repeat across different problems a street apart, and only a photo says it is
the same one: without photos a pair is proposed, never merged. A dispatcher who says two cases differ is
not asked again. The thresholds were set on the demo history's seed 2026 and checked on four others
(`bench/ai_duplicates.py`, `docs/ai.md`).
"""

from __future__ import annotations

import logging
import math
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wecity.ai.models import ai_cursors, ai_duplicates
from wecity.ai.tokens import words
from wecity.cases import engine
from wecity.cases.choices import MERGEABLE, Source
from wecity.cases.event_feed import in_order
from wecity.cases.models import cases, categories, reports
from wecity.cases.timeline import add_event
from wecity.core.errors import InvalidTransition, NotFound, PermissionDenied, ValidationFailed
from wecity.geo.coords import distance_m, metres_box
from wecity.identity.choices import Role
from wecity.identity.service import record_audit

log = logging.getLogger(__name__)

RADIUS_M = 300.0
WINDOW = timedelta(days=7)
AUTO_RADIUS_M = 200.0
PROPOSE = 0.4
# At most 12 of 64 bits differ. Unrelated photos differ in about 32 (random ones reach 12 about once in
# ten million pairs); another person's photo of one scene, cropped and lit otherwise, in 4 to 10.
PHOTO_MATCH = 0.8
TEXT_SHARED = 0.15
CURSOR = "duplicates"
BATCH = 500  # new cases a run looks at, at most
PLATFORM = "platform:ai"

PROPOSED, MERGED, DISMISSED = "proposed", "merged", "dismissed"
UNDONE = "undone"  # merged, then taken apart by staff (`engine.unmerge`): the merge was wrong
_PUNCTUATION = re.compile(r"[\W_]+", re.UNICODE)


# -- the parts of the score ----------------------------------------------------------------------------

def text_features(text: str) -> Counter[str]:
    """Counts of the character bigrams (punctuation and spaces left out, case and width folded) and of the
    ICU words of `text`."""
    folded = unicodedata.normalize("NFKC", text or "").casefold()
    squeezed = _PUNCTUATION.sub("", folded)
    grams: Counter[str] = Counter(squeezed[i:i + 2] for i in range(len(squeezed) - 1))
    grams.update(f"w:{w}" for w in words(folded))
    return grams


def cosine(a: Counter[str], b: Counter[str]) -> float:
    if not a or not b:
        return 0.0
    dot = sum(n * b[k] for k, n in a.items() if k in b)
    return dot / math.sqrt(sum(n * n for n in a.values()) * sum(n * n for n in b.values()))


def photo_similarity(hashes_a: list[str], hashes_b: list[str]) -> float | None:
    """1 − Hamming distance / 64 of the closest pair, or None when either side has no photo."""
    if not hashes_a or not hashes_b:
        return None
    closest = min(bin(int(x, 16) ^ int(y, 16)).count("1") for x in hashes_a for y in hashes_b)
    return 1 - closest / 64


@dataclass(frozen=True, slots=True)
class Pair:
    """A newer case and an older open one, with the parts of their score."""

    case_id: int
    candidate_id: int
    text: float
    photo: float | None
    distance_m: float
    same_category: bool
    same_department: bool = False
    # Either case is placed only at the gazetteer's point for an address in words (a road's, a 街道's): every
    # case on that road has that point, so the distance says nothing and the place counts for nothing.
    placed_by_address: bool = False

    @property
    def photo_evidence(self) -> float:
        if self.photo is None:
            return 0.0
        return min(1.0, max(0.0, (self.photo - 0.5) / (PHOTO_MATCH - 0.5)))

    @property
    def score(self) -> float:
        place = 0.0 if self.placed_by_address else max(0.0, 1 - self.distance_m / RADIUS_M)
        return 1 - ((1 - 0.9 * self.photo_evidence) * (1 - 0.7 * self.text)
                    * (1 - 0.3 * self.same_category) * (1 - 0.2 * place))

    @property
    def merges(self) -> bool:
        """Strong enough for the platform to merge it without asking: see the module's docstring."""
        return (self.photo is not None and self.photo >= PHOTO_MATCH and self.distance_m <= AUTO_RADIUS_M
                and not self.placed_by_address and (self.same_category or self.same_department or self.text >= TEXT_SHARED))


# -- finding pairs -------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class _Case:
    id: int
    category: str
    department: int | None
    lat: float
    long: float
    created_at: datetime
    text: Counter[str]
    photos: list[str]
    placed_by_address: bool


def _cases_with_evidence(conn: Connection, rows: list[Any]) -> list[_Case]:
    """The cases of `rows` with the words of all their reports and the perceptual hashes of their photos."""
    from wecity.media.models import media

    ids = [r.id for r in rows]
    texts: dict[int, list[str]] = {i: [] for i in ids}
    media_of: dict[int, list[str]] = {i: [] for i in ids}
    for r in conn.execute(sa.select(reports.c.case_id, reports.c.description, reports.c.media_ids)
                          .where(reports.c.case_id.in_(ids)).order_by(reports.c.id)):
        texts[r.case_id].append(r.description or "")
        media_of[r.case_id].extend(r.media_ids or [])
    wanted = {m for ms in media_of.values() for m in ms}
    hashes = dict(conn.execute(sa.select(media.c.id, media.c.phash).where(
        media.c.id.in_(wanted), media.c.phash.is_not(None))).all()) if wanted else {}
    return [_Case(r.id, r.category_code, r.department_id, r.lat, r.long, r.created_at,
                  text_features(" ".join(texts[r.id]) or (r.description or "")),
                  [hashes[m] for m in media_of[r.id] if m in hashes], bool(r.place_from_address)) for r in rows]


_CASE_COLUMNS = (cases.c.id, cases.c.category_code, cases.c.department_id, cases.c.lat, cases.c.long, cases.c.created_at,
                 cases.c.description, cases.c.place_from_address)


def pairs_for(conn: Connection, case_id: int) -> list[Pair]:
    """Every older open case near `case_id` within the window, scored, best first (any score)."""
    row = conn.execute(sa.select(*_CASE_COLUMNS, cases.c.status).where(cases.c.id == case_id)).first()
    if row is None or row.lat is None or row.long is None:
        return []
    south, west, north, east = metres_box(row.lat, row.long, RADIUS_M)
    near = [r for r in conn.execute(sa.select(*_CASE_COLUMNS).where(
        cases.c.id != case_id, cases.c.status.in_([s.value for s in MERGEABLE]),
        cases.c.created_at <= row.created_at, cases.c.created_at >= row.created_at - WINDOW,
        cases.c.lat.between(south, north), cases.c.long.between(west, east)))
        if distance_m(row.lat, row.long, r.lat, r.long) <= RADIUS_M]
    if not near:
        return []
    this, *others = _cases_with_evidence(conn, [row, *near])
    found = [Pair(this.id, other.id, round(cosine(this.text, other.text), 4),
                  photo_similarity(this.photos, other.photos),
                  round(distance_m(this.lat, this.long, other.lat, other.long), 1), this.category == other.category,
                  this.department is not None and this.department == other.department,
                  this.placed_by_address or other.placed_by_address)
             for other in others]
    return sorted(found, key=lambda p: (-p.score, p.candidate_id))


def review_case(conn: Connection, case_id: int, *, now: datetime) -> list[dict[str, Any]]:
    """Look for the older cases `case_id` may repeat: record the proposals, merge the best pair if it is
    strong enough (into the older case, as a dispatcher would). Returns what was recorded."""
    dismissed = {r.candidate_id for r in conn.execute(sa.select(ai_duplicates.c.candidate_id).where(
        ai_duplicates.c.case_id == case_id, ai_duplicates.c.state.in_([DISMISSED, UNDONE])))}
    found = [p for p in pairs_for(conn, case_id) if p.score >= PROPOSE and p.candidate_id not in dismissed]
    if not found:
        return []
    merge_into = found[0].candidate_id if found[0].merges else None
    recorded = []
    for pair in found:
        state = MERGED if pair.candidate_id == merge_into else PROPOSED
        values = {"score": round(pair.score, 4), "text_similarity": pair.text, "photo_similarity": pair.photo,
                  "distance_m": pair.distance_m, "same_category": pair.same_category, "state": state,
                  "found_at": now, "decided_at": now if state == MERGED else None,
                  "decided_by": PLATFORM if state == MERGED else None}
        updated = conn.execute(ai_duplicates.update().where(
            ai_duplicates.c.case_id == pair.case_id, ai_duplicates.c.candidate_id == pair.candidate_id)
            .values(**values)).rowcount
        if not updated:
            conn.execute(ai_duplicates.insert().values(case_id=pair.case_id, candidate_id=pair.candidate_id,
                                                       **values))
        recorded.append({"case_id": pair.case_id, "candidate_id": pair.candidate_id, **values})
    if merge_into is not None:
        engine.merge(conn, case_id, merge_into, engine.Actor.system("并单建议 / duplicate finder"), now)
    return recorded


# Where the cursor waits at a gap and since when (the runner's process keeps it; a restart waits again).
_GAPS: dict[str, tuple[int | None, datetime | None]] = {}


def review_new(conn: Connection, *, now: datetime, batch: int = BATCH) -> int:
    """The runner's job: review the cases opened since the last run (citizens' and enterprises' reports;
    sensors have their own one-case-per-device rule). Returns how many were looked at."""
    position = conn.execute(sa.select(ai_cursors.c.position).where(ai_cursors.c.name == CURSOR)).scalar()
    if position is None:
        # A city that turns this on is not reviewed backwards: start from the newest case.
        position = int(conn.execute(sa.select(sa.func.coalesce(sa.func.max(cases.c.id), 0))).scalar_one())
        conn.execute(ai_cursors.insert().values(name=CURSOR, position=position))
        return 0
    found = conn.execute(sa.select(cases.c.id, cases.c.status, cases.c.source).where(cases.c.id > position)
                         .order_by(cases.c.id).limit(batch)).all()
    # On PostgreSQL a case id can commit after a higher one: the cursor waits at a gap (a minute, then takes
    # it for a rolled-back insert) instead of passing a case it has not seen.
    waiting_at, since = _GAPS.get(CURSOR, (None, None))
    reached, since = in_order([r.id for r in found], position, since if waiting_at == position else None, now)
    _GAPS[CURSOR] = (reached, since)
    new = [r for r in found if r.id <= reached]
    for row in new:
        if row.status in {s.value for s in MERGEABLE} and row.source != Source.SENSOR.value:
            try:
                with conn.begin_nested():  # all of one case's review or none of it; no other case stopped
                    review_case(conn, row.id, now=now)
            except (ValidationFailed, InvalidTransition):
                log.info("duplicate review of case %s skipped: its cases changed meanwhile", row.id)
    if new:
        conn.execute(ai_cursors.update().where(ai_cursors.c.name == CURSOR).values(position=new[-1].id))
    return len(new)


# -- what dispatchers see and decide -------------------------------------------------------------------

def proposals_for(conn: Connection, case_id: int) -> list[dict[str, Any]]:
    """The open proposals involving `case_id` (as the newer case or the older), best first, each with the
    other case's summary; pairs whose cases are no longer both being worked on (MERGEABLE, what a merge
    takes: not a resolved or verified one) are left out."""
    other = sa.case((ai_duplicates.c.case_id == case_id, ai_duplicates.c.candidate_id),
                    else_=ai_duplicates.c.case_id).label("other_id")
    rows = conn.execute(sa.select(ai_duplicates, other).where(
        ai_duplicates.c.state == PROPOSED,
        sa.or_(ai_duplicates.c.case_id == case_id, ai_duplicates.c.candidate_id == case_id))).all()
    if not rows:
        return []
    open_states = [s.value for s in MERGEABLE]
    summaries = {r.id: r for r in conn.execute(
        sa.select(cases.c.id, cases.c.status, cases.c.description, cases.c.created_at,
                  categories.c.name_zh, categories.c.name_en)
        .select_from(cases.join(categories, categories.c.code == cases.c.category_code))
        .where(cases.c.id.in_([case_id, *[r.other_id for r in rows]]), cases.c.status.in_(open_states)))}
    if case_id not in summaries:
        return []
    out = []
    for r in rows:
        s = summaries.get(r.other_id)
        if s is None:
            continue
        out.append({"id": r.id, "case_id": r.case_id, "candidate_id": r.candidate_id, "other_case_id": r.other_id,
                    "score": r.score, "text_similarity": r.text_similarity, "photo_similarity": r.photo_similarity,
                    "distance_m": r.distance_m, "same_category": r.same_category, "found_at": r.found_at,
                    "other": {"status": s.status, "description": s.description, "created_at": s.created_at,
                              "category_zh": s.name_zh, "category_en": s.name_en}})
    return sorted(out, key=lambda p: (-p["score"], p["id"]))


def dismiss(conn: Connection, proposal_id: int, actor: engine.Actor, now: datetime, *,
            case_id: int | None = None) -> None:
    """A dispatcher says the two cases differ: the pair is not proposed again. Whoever may merge the two
    decides (the dispatch centre; a department's dispatcher or supervisor for two of its own cases); from a
    case's page (`case_id`) only a proposal about that case. Both timelines (for staff) and the audit log
    say who decided."""
    if not (actor.has(Role.DISPATCHER) or actor.has(Role.SUPERVISOR)):
        raise PermissionDenied("needs the dispatcher or supervisor role", message_zh="需要派遣员或督办角色")
    row = conn.execute(sa.select(ai_duplicates).where(ai_duplicates.c.id == proposal_id,
                                                      ai_duplicates.c.state == PROPOSED)).first()
    if row is None or (case_id is not None and case_id not in (row.case_id, row.candidate_id)):
        raise NotFound(f"no open duplicate proposal {proposal_id}", message_zh=f"没有待处理的并单建议 {proposal_id}",
                       code="ai.duplicate_not_found")
    for one in (row.case_id, row.candidate_id):
        engine.check_may(conn, one, actor, "merge")
    changed = conn.execute(ai_duplicates.update().where(ai_duplicates.c.id == proposal_id,
                                                        ai_duplicates.c.state == PROPOSED)
                           .values(state=DISMISSED, decided_at=now, decided_by=actor.id)).rowcount
    if changed != 1:
        raise NotFound(f"no open duplicate proposal {proposal_id}", message_zh=f"没有待处理的并单建议 {proposal_id}",
                       code="ai.duplicate_not_found")
    for one, other in ((row.case_id, row.candidate_id), (row.candidate_id, row.case_id)):
        add_event(conn, one, at=now, event="duplicate_dismissed", actor=actor.id, actor_name=actor.name,
                  channel=actor.channel, public=False, detail={"other_case_id": other, "proposal_id": proposal_id})
    record_audit(conn, at=now, actor=actor.id, action="ai.duplicate_dismissed", target=f"case:{row.case_id}",
                 outcome="ok", source_address=actor.source_address,
                 detail={"candidate_id": row.candidate_id, "proposal_id": proposal_id})


def merge_proposal(conn: Connection, proposal_id: int, actor: engine.Actor, now: datetime) -> int:
    """A dispatcher merges the pair of a proposal: the newer case into the older, by the case engine (which
    checks the role and that both are open); the proposal says so. Returns the surviving case."""
    row = conn.execute(sa.select(ai_duplicates).where(ai_duplicates.c.id == proposal_id,
                                                      ai_duplicates.c.state == PROPOSED)).first()
    if row is None:
        raise NotFound(f"no open duplicate proposal {proposal_id}", message_zh=f"没有待处理的并单建议 {proposal_id}",
                       code="ai.duplicate_not_found")
    engine.merge(conn, row.case_id, row.candidate_id, actor, now)
    conn.execute(ai_duplicates.update().where(ai_duplicates.c.id == proposal_id)
                 .values(state=MERGED, decided_at=now, decided_by=actor.id))
    return int(row.candidate_id)


def on_case_merged(conn: Connection, *, case_id: int, into_case_id: int, actor: str, now: datetime) -> None:
    """The case engine merged two cases (through the staff API or the case page, not from a proposal): the
    open proposal for that pair, either way round, is marked merged by whoever merged them."""
    conn.execute(ai_duplicates.update().where(
        ai_duplicates.c.state == PROPOSED,
        sa.or_(sa.and_(ai_duplicates.c.case_id == case_id, ai_duplicates.c.candidate_id == into_case_id),
               sa.and_(ai_duplicates.c.case_id == into_case_id, ai_duplicates.c.candidate_id == case_id)))
        .values(state=MERGED, decided_at=now, decided_by=actor))


def on_case_unmerged(conn: Connection, *, case_id: int, into_case_id: int, actor: str, now: datetime) -> None:
    """Staff took a merge apart: the pair, either way round, is never proposed or merged again, and a merge
    the platform made counts as a wrong one (`merge_figures`: `undone`)."""
    pair = sa.or_(sa.and_(ai_duplicates.c.case_id == case_id, ai_duplicates.c.candidate_id == into_case_id),
                  sa.and_(ai_duplicates.c.case_id == into_case_id, ai_duplicates.c.candidate_id == case_id))
    # `decided_by` stays whoever merged (the platform, or a dispatcher); who took it apart is on the timeline.
    changed = conn.execute(ai_duplicates.update().where(pair, ai_duplicates.c.state == MERGED)
                           .values(state=UNDONE)).rowcount
    # A proposal still open for the pair is settled: staff said the two differ.
    changed += conn.execute(ai_duplicates.update().where(pair, ai_duplicates.c.state == PROPOSED)
                            .values(state=DISMISSED, decided_at=now, decided_by=actor)).rowcount
    known = conn.execute(sa.select(ai_duplicates.c.id).where(pair)).first() is not None
    if not changed and not known:  # merged by staff without a proposal: recorded so that the finder passes it
        newer, older = max(case_id, into_case_id), min(case_id, into_case_id)
        conn.execute(ai_duplicates.insert().values(
            case_id=newer, candidate_id=older, score=0.0, text_similarity=0.0, distance_m=0.0, same_category=False,
            state=UNDONE, found_at=now, decided_at=now, decided_by=actor))


def merge_figures(conn: Connection) -> dict[str, int]:
    """How many pairs the platform merged (and, apart, how many of its merges staff took apart: `undone`),
    dispatchers merged from a proposal, dismissed, and still open."""
    rows = conn.execute(sa.select(ai_duplicates.c.state, ai_duplicates.c.decided_by, sa.func.count())
                        .group_by(ai_duplicates.c.state, ai_duplicates.c.decided_by)).all()
    out = {"merged_by_platform": 0, "merged_by_staff": 0, "dismissed": 0, "proposed": 0, "undone": 0}
    for state, by, n in rows:
        if state == MERGED:
            out["merged_by_platform" if by == PLATFORM else "merged_by_staff"] += n
        elif state in (DISMISSED, PROPOSED):
            out[state] += n
        elif state == UNDONE and by == PLATFORM:
            out["undone"] += n
    return out

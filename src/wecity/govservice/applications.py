"""The applicant's verbs: start an application pre-filled once-only, keep a draft, submit, supply what
was asked for (补正), withdraw.

Each verb is one transaction on a connection, checks who is asking first, and writes the change, its
timeline entry and its notices together. The department's verbs are in wecity.govservice.approvals.
"""

from __future__ import annotations

import functools
import secrets
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wecity.core.db import insert_unless_there, inserted_id
from wecity.core.errors import Conflict, InvalidTransition, NotFound, PermissionDenied, ValidationFailed
from wecity.core.settings import UPLOAD_FILES
from wecity.govservice import certificates, process
from wecity.govservice.forms import Found, Source, check_form, draft_errors, prefill, provenance_after
from wecity.govservice.models import applications, matter_versions, matters
from wecity.govservice.steps import (
    Status,
    after_step,
    end_pause,
    issue_certificate,
    log_event,
    tell_applicant,
    tell_department,
)
from wecity.identity.applicants import Applicant, acting_as, may_act_for
from wecity.identity.audit import record_audit
from wecity.media.service import claim_media

MAX_IDEMPOTENCY_KEY = 100
MAX_MATERIAL_FILES = UPLOAD_FILES  # files one material holds, over all its uploads: one upload's worth
REPLACED, UPLOADED, MISSING, REQUESTED = "replaced", "uploaded", "missing", "requested"


def matter_definition(conn: Connection, code: str, version: int | None = None) -> dict[str, Any]:
    """A matter's definition: the current one, or the version an application was made under."""
    if version is None:
        row = conn.execute(sa.select(matters.c.definition, matters.c.active).where(matters.c.code == code)).first()
        if row is None or not row.active:
            raise NotFound(f"no matter {code} in the catalogue", message_zh=f"事项目录中没有事项 {code}")
        return dict(row.definition)
    found = conn.execute(sa.select(matter_versions.c.definition).where(
        matter_versions.c.code == code, matter_versions.c.version == version)).scalar_one()
    return dict(found)


def _held_sources(conn: Connection, applicant: Applicant, definition: Mapping[str, Any],
                  now: datetime) -> dict[str, Source]:
    """The once-only sources for this applicant: their base-register record, and each certificate type the
    form or the materials name, read from their wallet and checked against its signature."""
    sources: dict[str, Source] = {"profile": lambda spec: Found(applicant.profile.get(spec.get("field", "")),
                                                                via="profile")}
    wanted = {spec["type"] for prop in definition["form"].get("properties", {}).values()
              if isinstance(prop, dict) and isinstance(spec := prop.get("x-prefill"), dict)
              and spec.get("source") == "certificate" and isinstance(spec.get("type"), str)}

    def from_certificate(kind: str) -> Source:
        @functools.cache
        def held() -> dict[str, Any] | None:
            """The wallet's newest certificate of this kind, checked once for all the fields it fills."""
            found = certificates.held_certificate(conn, applicant.id, kind, now, verified=False)
            if found is None:
                return None
            verdict = certificates.verify_number(conn, found["number"], now)
            if verdict.status != "valid":
                raise ValidationFailed(f"certificate {found['number']} does not verify: {verdict.reason}",
                                       message_zh=f"证照 {found['number']} 验证未通过：{verdict.reason_zh}")
            return found

        def read(spec: Mapping[str, Any]) -> Found | None:
            found = held()
            if found is None:
                return None
            return Found(found["document"]["fields"].get(spec.get("field", "")), via=found["number"])
        return read

    for kind in wanted:
        sources[f"certificate:{kind}"] = from_certificate(kind)
    return sources


def _materials(conn: Connection, applicant: Applicant, definition: Mapping[str, Any],
               now: datetime) -> dict[str, Any]:
    """Each material's state at the start: replaced by what the city holds, or still to be uploaded."""
    out: dict[str, Any] = {}
    for material in definition.get("materials", []):
        by = material.get("replaced_by")
        state: dict[str, Any] = {"state": MISSING, "media": []}
        if by == "profile" and applicant.profile:
            state = {"state": REPLACED, "media": [], "by": "profile"}
        elif isinstance(by, str) and by.startswith("certificate:"):
            held = certificates.held_certificate(conn, applicant.id, by.split(":", 1)[1], now)
            if held is not None:
                state = {"state": REPLACED, "media": [], "by": held["number"]}
        out[material["code"]] = state
    return out


def _check_may_apply(applicant: Applicant, definition: Mapping[str, Any]) -> None:
    if applicant.kind not in definition["applicants"]:
        who = "enterprises" if applicant.kind == "enterprise" else "citizens"
        raise PermissionDenied(f"{who} cannot apply for {definition['name_en']}",
                               message_zh=f"{'企业' if applicant.kind == 'enterprise' else '个人'}不能申请{definition['name_zh']}",
                               code="govservice.not_eligible")


def start_application(conn: Connection, *, citizen: Applicant, matter_code: str, now: datetime,
                      acting_for: int | None = None, idempotency_key: str | None = None,
                      sources: Mapping[str, Source] | None = None) -> int:
    """A new draft, pre-filled from what the city holds; returns its id. With an idempotency key, the
    same key gives the same draft again. `sources`: once-only sources of domains built on this one (the
    enterprise register answers `{"source": "enterprise", "field": …}`), beside the profile and the wallet."""
    applicant = acting_as(conn, citizen, acting_for)
    if idempotency_key:
        found = _replayed(conn, citizen, idempotency_key[:MAX_IDEMPOTENCY_KEY], matter_code, applicant)
        if found is not None:
            return found
    definition = matter_definition(conn, matter_code)
    _check_may_apply(applicant, definition)
    version = conn.execute(sa.select(matters.c.version).where(matters.c.code == matter_code)).scalar_one()
    values, provenance = prefill(definition["form"], {**_held_sources(conn, applicant, definition, now),
                                                      **(sources or {})})
    materials = _materials(conn, applicant, definition, now)
    key = idempotency_key[:MAX_IDEMPOTENCY_KEY] if idempotency_key else None
    new_id = insert_unless_there(conn, applications, dict(
        number=f"new-{secrets.token_hex(12)}", matter_code=matter_code, matter_version=version,
        department_code=definition["department"], applicant_id=applicant.id, filed_by=citizen.id,
        status=Status.DRAFT, form_data=values, prefill=provenance, materials=materials,
        documents_spared=sum(m["state"] == REPLACED for m in materials.values()), idempotency_key=key,
        created_at=now, updated_at=now, paused_days=0, extended_days=0), unique=["filed_by", "idempotency_key"])
    if new_id is None:  # the same key, sent twice at the same moment: the first request's draft
        found = _replayed(conn, citizen, key or "", matter_code, applicant)
        if found is None:
            raise RuntimeError("the idempotency key's draft was refused as already there, yet it is not")
        return found
    app_id = int(new_id)
    conn.execute(applications.update().where(applications.c.id == app_id).values(number=application_number(app_id, now)))
    log_event(conn, app_id, "created", actor=f"applicant:{citizen.id}", now=now,
              detail={"prefilled": sorted(f for f, p in provenance.items() if p["status"] == "filled"),
                      "prefill_failed": sorted(f for f, p in provenance.items() if p["status"] == "failed")})
    return int(app_id)


def _replayed(conn: Connection, citizen: Applicant, key: str, matter_code: str, applicant: Applicant) -> int | None:
    """The draft an earlier request with this idempotency key made, if any; the key sent again with another
    matter or for another applicant is a mistake, answered as such, never with the earlier draft."""
    found = conn.execute(sa.select(applications.c.id, applications.c.matter_code, applications.c.applicant_id).where(
        applications.c.filed_by == citizen.id, applications.c.idempotency_key == key)).first()
    if found is None:
        return None
    if found.matter_code != matter_code or found.applicant_id != applicant.id:
        raise Conflict("this Idempotency-Key was used for another matter or applicant: use a new key",
                       message_zh="该 Idempotency-Key 已用于其他事项或申请人，请使用新的键",
                       code="govservice.idempotency_key_reused")
    return int(found.id)


def application_number(app_id: int, now: datetime) -> str:
    """办件编号: the year and a serial; the serial is the row's id, so numbers never collide."""
    return f"SQ{now.year}{app_id:08d}"


def own_application(conn: Connection, app_id: int, citizen: Applicant, *, lock: bool = False) -> Any:
    """The application if this citizen may act for its applicant now (themselves, or an enterprise that lists
    them); to anyone else it does not exist (a stranger learns nothing by trying numbers). Having filed it
    is not enough: an agent the legal representative withdrew no longer sees the enterprise's applications."""
    query = sa.select(applications).where(applications.c.id == app_id)
    row = conn.execute(query.with_for_update() if lock else query).first()
    if row is None or not may_act_for(conn, citizen.id, row.applicant_id):
        raise NotFound(f"no application {app_id}", message_zh=f"申请 {app_id} 不存在")
    return row


def _merged(stored: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """The form as it stands after `changes`: a field given None is cleared (the applicant removed it)."""
    return {k: v for k, v in {**stored, **dict(changes)}.items() if v is not None}


def save_draft(conn: Connection, app_id: int, *, citizen: Applicant, form_data: Mapping[str, Any],
               now: datetime) -> None:
    """Keep what the applicant typed so far: what is there must be well formed, the rest may wait."""
    row = own_application(conn, app_id, citizen, lock=True)
    if row.status != Status.DRAFT:
        raise InvalidTransition("only a draft can be edited", message_zh="仅草稿可以修改")
    definition = matter_definition(conn, row.matter_code, row.matter_version)
    data = _merged(row.form_data, form_data)
    errors = draft_errors(definition["form"], data)
    if errors:
        raise ValidationFailed("; ".join(e.message_en for e in errors), message_zh="；".join(e.message_zh for e in errors),
                               code="govservice.form_invalid", details={"fields": [e.as_dict() for e in errors]})
    conn.execute(applications.update().where(applications.c.id == app_id).values(
        form_data=data, prefill=provenance_after(row.prefill or {}, data), updated_at=now))


def uploadable(conn: Connection, app_id: int, citizen: Applicant, material: str | None = None, *,
               lock: bool = False) -> Any:
    """The application, if this citizen may upload to it now: a draft, or one a 补正 request sent back, and
    `material` one the matter asks for with room for more files. Asked before an upload's body is read
    and its images decoded, and again in the write."""
    row = own_application(conn, app_id, citizen, lock=lock)
    if row.status not in (Status.DRAFT, Status.SUPPLEMENT):
        raise InvalidTransition("materials can be added to a draft or when asked for",
                                message_zh="仅草稿或补正时可以上传材料")
    if material is not None:
        if material not in row.materials:
            raise ValidationFailed(f"the matter asks for no material {material!r}",
                                   message_zh=f"该事项无材料 {material!r}", code="govservice.unknown_material")
        if len(row.materials[material].get("media", [])) >= MAX_MATERIAL_FILES:
            raise _too_many_files()
    return row


def _too_many_files() -> ValidationFailed:
    return ValidationFailed(f"a material holds at most {MAX_MATERIAL_FILES} files",
                            message_zh=f"每项材料最多 {MAX_MATERIAL_FILES} 个文件", code="govservice.too_many_files")


def attach_material(conn: Connection, app_id: int, *, citizen: Applicant, material: str, media: list[str],
                    now: datetime) -> None:
    """Record the files uploaded for one material (a draft's, or one asked for in 补正)."""
    if not media:  # no file is not an upload: the material would count as there
        raise ValidationFailed("choose at least one file to upload", message_zh="请选择要上传的文件",
                               code="govservice.no_files")
    row = uploadable(conn, app_id, citizen, material, lock=True)
    files = [*row.materials[material]["media"], *media]
    if len(files) > MAX_MATERIAL_FILES:
        raise _too_many_files()
    materials = {**row.materials, material: {"state": UPLOADED, "media": files}}
    conn.execute(applications.update().where(applications.c.id == app_id).values(materials=materials, updated_at=now))
    # Scans of licences and identity cards: served only to whom may see the application (materials.py).
    claim_media(conn, media, f"application:{app_id}")
    log_event(conn, app_id, "material_added", actor=f"applicant:{citizen.id}", now=now,
              detail={"material": material, "files": len(media)})


def missing_materials(definition: Mapping[str, Any], materials: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Required materials not yet there, and any material a 补正 request asked for again."""
    def lacking(m: Mapping[str, Any]) -> bool:
        state = materials.get(m["code"], {}).get("state")
        return state == REQUESTED or (bool(m.get("required")) and state == MISSING)
    return [m for m in definition.get("materials", []) if lacking(m)]


def _certificates_still_valid(conn: Connection, definition: Mapping[str, Any], materials: Mapping[str, Any],
                              now: datetime) -> None:
    """A material a certificate spared when the draft began is spared only if that certificate is still
    valid at submission (not revoked, not expired since): else the applicant is told to upload it."""
    names = {m["code"]: m for m in definition.get("materials", [])}
    lapsed = []
    for code, state in materials.items():
        by = state.get("by")
        if state.get("state") == REPLACED and by and by != "profile":
            verdict = certificates.verify_number(conn, by, now)
            if verdict.status != "valid":
                lapsed.append((names.get(code, {"code": code}), by, verdict))
    if lapsed:
        raise ValidationFailed(
            "; ".join(f"certificate {by} is no longer valid ({v.reason}): upload "
                      f"{m.get('name_en') or m.get('name_zh') or m['code']}" for m, by, v in lapsed),
            message_zh="；".join(f"电子证照 {by} 已失效（{v.reason_zh}），请上传{m.get('name_zh') or m['code']}"
                                 for m, by, v in lapsed),
            code="govservice.certificate_lapsed", details={"materials": [m["code"] for m, _, _ in lapsed]})


def submit(conn: Connection, app_id: int, *, citizen: Applicant, now: datetime) -> bool:
    """Submit a draft: the whole form is checked and every required material is there or replaced; the
    matter's process starts. Submitting again is answered as the first time (returns False)."""
    row = own_application(conn, app_id, citizen, lock=True)
    if row.status != Status.DRAFT:
        if row.submitted_at is not None:
            return False
        raise InvalidTransition("this application cannot be submitted", message_zh="该申请不能提交")
    definition = matter_definition(conn, row.matter_code, row.matter_version)
    check_form(definition["form"], row.form_data)
    _certificates_still_valid(conn, definition, row.materials, now)
    missing = missing_materials(definition, row.materials)
    if missing:
        raise ValidationFailed("materials missing: " + ", ".join(m.get("name_en") or m["name_zh"] for m in missing),
                               message_zh="缺少材料：" + "、".join(m["name_zh"] for m in missing),
                               code="govservice.materials_missing",
                               details={"materials": [m["code"] for m in missing]})
    state = process.start(definition["process"], {"reviewers": list(definition.get("reviewers", []))})
    conn.execute(applications.update().where(applications.c.id == app_id).values(
        submitted_at=now, updated_at=now, workflow=state))
    log_event(conn, app_id, "submitted", actor=f"applicant:{citizen.id}", now=now)
    record_audit(conn, at=now, actor=f"applicant:{citizen.id}", action="application.submit",
                 target=f"application:{row.number}")
    after_step(conn, app_id, now=now)
    tell_department(conn, row.department_code, app_id, "submitted", now=now)
    return True


def supply(conn: Connection, app_id: int, *, citizen: Applicant, form_data: Mapping[str, Any], now: datetime) -> None:
    """The applicant answers a 补正 request: the form is checked whole, the materials asked for must now be
    there, the clock runs again from here."""
    row = own_application(conn, app_id, citizen, lock=True)
    if row.status != Status.SUPPLEMENT:
        raise InvalidTransition("nothing was asked of this application", message_zh="该申请无需补正")
    definition = matter_definition(conn, row.matter_code, row.matter_version)
    data = _merged(row.form_data, form_data)
    check_form(definition["form"], data)
    missing = missing_materials(definition, row.materials)
    if missing:
        raise ValidationFailed("materials missing: " + ", ".join(m.get("name_en") or m["name_zh"] for m in missing),
                               message_zh="缺少材料：" + "、".join(m["name_zh"] for m in missing),
                               code="govservice.materials_missing", details={"materials": [m["code"] for m in missing]})
    task = next((t for t in process.ready_tasks(row.workflow) if t.lane == "applicant"), None)
    if task is None:
        raise InvalidTransition("nothing was asked of this application", message_zh="该申请无需补正")
    state = process.complete(row.workflow, task.id, {"supplied": True})
    conn.execute(applications.update().where(applications.c.id == app_id).values(
        form_data=data, prefill=provenance_after(row.prefill or {}, data), workflow=state, updated_at=now))
    end_pause(conn, app_id, now=now, kind="supplement")
    log_event(conn, app_id, "supplied", actor=f"applicant:{citizen.id}", now=now)
    record_audit(conn, at=now, actor=f"applicant:{citizen.id}", action="application.supply",
                 target=f"application:{row.number}")
    after_step(conn, app_id, now=now)
    tell_department(conn, row.department_code, app_id, "supplied", now=now)


def withdraw(conn: Connection, app_id: int, *, citizen: Applicant, now: datetime) -> None:
    """The applicant takes the application back (a draft, or one not yet decided)."""
    row = own_application(conn, app_id, citizen, lock=True)
    if row.finished_at is not None:
        raise InvalidTransition("this application is finished", message_zh="该申请已办结")
    conn.execute(applications.update().where(applications.c.id == app_id).values(
        status=Status.WITHDRAWN, outcome="withdrawn", finished_at=now, updated_at=now))
    end_pause(conn, app_id, now=now)
    log_event(conn, app_id, "withdrawn", actor=f"applicant:{citizen.id}", now=now)
    record_audit(conn, at=now, actor=f"applicant:{citizen.id}", action="application.withdraw",
                 target=f"application:{row.number}")
    if row.submitted_at is not None:
        tell_department(conn, row.department_code, app_id, "withdrawn", now=now)
    tell_applicant(conn, app_id, "withdrawn", now=now)


def record_granted(conn: Connection, *, applicant_id: int, filed_by: int, matter_code: str, form_data: Mapping[str, Any],
                   basis: str, now: datetime, key_dir: Path | None, actor: str) -> int:
    """A benefit granted without an application (免申即享): recorded as an application decided at once —
    approved under its matter, the certificate issued, the applicant told — so that it sits in the same
    records, timeline and wallet as any other. `basis` says why (the policy, its version, its outcome);
    `filed_by` is the citizen told by SMS (the enterprise's legal representative), or the applicant itself."""
    definition = matter_definition(conn, matter_code)
    version = conn.execute(sa.select(matters.c.version).where(matters.c.code == matter_code)).scalar_one()
    app_id = inserted_id(conn.execute(applications.insert().values(
        number=f"new-{secrets.token_hex(12)}", matter_code=matter_code, matter_version=version,
        department_code=definition["department"], applicant_id=applicant_id, filed_by=filed_by,
        status=Status.APPROVED, outcome="approved", form_data=dict(form_data), prefill={}, materials={},
        documents_spared=len(definition.get("materials", [])), created_at=now, updated_at=now, submitted_at=now,
        accepted_at=now, finished_at=now, paused_days=0, extended_days=0)))
    number = application_number(app_id, now)
    conn.execute(applications.update().where(applications.c.id == app_id).values(number=number))
    log_event(conn, app_id, "granted_without_application", actor=actor, now=now,
              department_code=definition["department"], note=basis)
    detail = issue_certificate(conn, app_id, now=now, key_dir=key_dir)
    log_event(conn, app_id, "delivered", actor="system", now=now, department_code=definition["department"], detail=detail)
    record_audit(conn, at=now, actor=actor, action="application.granted_without_application",
                 target=f"application:{number}", detail={"matter": matter_code, "applicant_id": applicant_id})
    tell_applicant(conn, app_id, "approved", now=now, note=basis)
    return int(app_id)

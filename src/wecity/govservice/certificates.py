"""E-certificates (电子证照): the city's signing key, issuing, verifying, revoking, and the holder's wallet.

What is signed is the certificate's *document*, a JSON object, in this canonical form (RFC 8785 JCS for the
documents the city issues):

    UTF-8 bytes of the JSON text with object keys sorted, no whitespace (separators "," and ":"),
    non-ASCII characters as themselves (not \\u escapes), and numbers only as integers of at most 2**53 - 1
    in magnitude (a decimal is written as a string).

In Python: ``json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()``.
(JCS sorts keys by UTF-16 code units, Python by code points; the two orders differ only between keys with
characters above U+FFFF and keys with characters from U+E000 to U+FFFF, which the city's keys never have.)

The signature is Ed25519 (RFC 8032) over those bytes, base64url without padding. The document names the key
(`key_id`, the first 16 hex digits of the SHA-256 of the raw public key); `public_keys` lists every key the
city ever signed with as a JWK set (RFC 8037), and `export_certificate` gives a holder their document,
signature and public key, so that anyone can verify a certificate without asking the city.

The private key lives in one PEM file under the var directory (mode 0600, its folder 0700), never in the
database and never in a log; the database keeps the public halves for ever, so that a certificate signed with
a retired key still verifies after `rotate_key`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import re
import secrets
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy.engine import Connection

from wecity.core.errors import Conflict, InvalidTransition, NotFound, PermissionDenied, ValidationFailed
from wecity.geo.service import city_timezone
from wecity.govservice.models import certificates, signing_keys
from wecity.identity.audit import record_audit

log = logging.getLogger(__name__)

ALGORITHM = "Ed25519"
DOCUMENT_TYPE = "WeCityCertificate"
DOCUMENT_VERSION = 1
# Where the private key is kept, under the var directory.
KEY_FILE = Path("keys") / "certificates-ed25519.pem"
# The random part of a number: Crockford's base32 (no I, L, O, U), so that a number read off paper and typed
# in comes out right. Six characters are 30 bits a type and day: the public verification page cannot be
# walked through by guessing (it is rate-limited besides).
NUMBER_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
NUMBER_RANDOM = 6
# Integers beyond this are not exact in every JSON reader (IEEE doubles), so a document holds none.
JSON_SAFE_INT = 2**53 - 1
STATUSES = ("valid", "revoked", "expired", "forged", "unknown")


# -- canonical form and encodings ---------------------------------------------------------------------------

def canonical(document: Mapping[str, Any]) -> bytes:
    """The bytes that are signed: see the module docstring."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def key_id_of(raw_public_key: bytes) -> str:
    return hashlib.sha256(raw_public_key).hexdigest()[:16]


def _check_json(value: Any, where: str) -> Any:
    """`value` as the document will hold it: only what reads back the same from JSON in any language."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        if abs(value) > JSON_SAFE_INT:
            raise _invalid(f"{where}: integer too large for JSON; give it as a string",
                           f"{where}：整数超出 JSON 可精确表示的范围，请以字符串填写")
        return value
    if isinstance(value, (list, tuple)):
        return [_check_json(item, f"{where}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise _invalid(f"{where}: keys must be strings", f"{where}：键必须是字符串")
            out[key] = _check_json(item, f"{where}.{key}")
        return out
    if isinstance(value, float):
        raise _invalid(f"{where}: decimals are written as strings in a certificate",
                       f"{where}：证照中的小数须以字符串填写")
    raise _invalid(f"{where}: {type(value).__name__} cannot be part of a certificate",
                   f"{where}：类型 {type(value).__name__} 不能写入证照")


def _invalid(message: str, message_zh: str) -> ValidationFailed:
    return ValidationFailed(message, message_zh=message_zh, code="certificate.invalid")


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat(timespec="seconds")


def mask_id_number(id_number: str) -> str:
    """A citizen's id number as a certificate shows it: the first three and last four characters."""
    text = id_number.strip()
    if len(text) <= 8:
        return "*" * max(len(text) - 2, 0) + text[-2:]
    return text[:3] + "*" * (len(text) - 7) + text[-4:]


# -- the signing key ----------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class SigningKey:
    """The city's current signing key. The private half is never printed (repr) nor compared."""

    key_id: str
    public_key: str  # base64url of the raw 32-byte public key
    private_key: Ed25519PrivateKey = field(repr=False, compare=False)
    algorithm: str = ALGORITHM

    def sign(self, data: bytes) -> str:
        return b64url(self.private_key.sign(data))


# Loaded keys by file, with the file's identity when it was read: a key rotated by another process (a new
# file put in place) is read again, an unchanged one is not.
_loaded: dict[Path, tuple[tuple[int, int], Ed25519PrivateKey]] = {}
_loaded_lock = threading.Lock()


def key_path(var_dir: Path) -> Path:
    return Path(var_dir) / KEY_FILE


def _public_raw(private: Ed25519PrivateKey) -> bytes:
    return private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _pem(private: Ed25519PrivateKey) -> bytes:
    return private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())


def _key_folder(path: Path) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # mkdir's mode is cut by the umask, and the folder may have been made by hand: set it.
    os.chmod(path.parent, 0o700)


def _write_temporary(path: Path, private: Ed25519PrivateKey) -> Path:
    """The key in a new file (0600) beside `path`, written through, ready to be linked or moved in place."""
    fd, name = tempfile.mkstemp(prefix=".certificates-", suffix=".pem", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, _pem(private))
        os.fsync(fd)
    finally:
        os.close(fd)
    return Path(name)


def _read(path: Path) -> Ed25519PrivateKey | None:
    """The key in `path` (cached while the file is unchanged), or None if there is no file."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    identity = (stat.st_ino, stat.st_mtime_ns)
    with _loaded_lock:
        cached = _loaded.get(path)
        if cached and cached[0] == identity:
            return cached[1]
    if stat.st_mode & 0o077:
        # Like ssh: a key others may read is set right, and said so (the path, never the key).
        log.warning("the certificate signing key %s was readable by others; now mode 0600", path)
        os.chmod(path, 0o600)
    private = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(private, Ed25519PrivateKey):
        raise Conflict(f"{path} holds no Ed25519 key", message_zh=f"{path} 中不是 Ed25519 密钥",
                       code="certificate.bad_key_file")
    with _loaded_lock:
        _loaded[path] = (identity, private)
    return private


def _create(path: Path) -> Ed25519PrivateKey:
    """A new key in `path`, unless another process made one first (then that one)."""
    _key_folder(path)
    private = Ed25519PrivateKey.generate()
    temporary = _write_temporary(path, private)
    try:
        os.link(temporary, path)  # fails if the file exists: whoever links first wins
    except FileExistsError:
        pass
    finally:
        temporary.unlink()
    found = _read(path)
    assert found is not None
    return found


def _register(conn: Connection, private: Ed25519PrivateKey, now: datetime) -> SigningKey:
    raw = _public_raw(private)
    key = SigningKey(key_id_of(raw), b64url(raw), private)
    row = conn.execute(sa.select(signing_keys).where(signing_keys.c.key_id == key.key_id)).first()
    if row is None:
        conn.execute(signing_keys.insert().values(key_id=key.key_id, algorithm=ALGORITHM,
                                                  public_key=key.public_key, created_at=now))
    elif row.retired_at is not None:
        raise Conflict(f"the signing key {key.key_id} in the key file was retired; rotate the key",
                       message_zh=f"密钥文件中的签名密钥 {key.key_id} 已停用，请轮换密钥",
                       code="certificate.key_retired")
    return key


def signing_key(conn: Connection, var_dir: Path, now: datetime | None = None) -> SigningKey:
    """The city's signing key: read from its file, or made (file and public row) on first use."""
    path = key_path(var_dir)
    private = _read(path) or _create(path)
    return _register(conn, private, now or datetime.now(UTC))


def rotate_key(conn: Connection, var_dir: Path, now: datetime) -> SigningKey:
    """Retire the signing key in use and put a new one in its place. Certificates signed with a retired key
    keep verifying: its public half stays in `signing_keys`. The old private key is gone."""
    path = key_path(var_dir)
    _key_folder(path)
    private = Ed25519PrivateKey.generate()
    raw = _public_raw(private)
    key = SigningKey(key_id_of(raw), b64url(raw), private)
    conn.execute(signing_keys.update().where(signing_keys.c.retired_at.is_(None)).values(retired_at=now))
    conn.execute(signing_keys.insert().values(key_id=key.key_id, algorithm=ALGORITHM,
                                              public_key=key.public_key, created_at=now))
    # Last, once the rows are written: the file is replaced in one step, never half-written.
    os.replace(_write_temporary(path, private), path)
    record_audit(conn, at=now, actor="system", action="certificate.rotate_key", target=f"signing_key:{key.key_id}")
    return key


def _public_key(conn: Connection, key_id: Any) -> Ed25519PublicKey | None:
    if not isinstance(key_id, str):
        return None
    row = conn.execute(sa.select(signing_keys.c.public_key, signing_keys.c.algorithm)
                       .where(signing_keys.c.key_id == key_id)).first()
    if row is None or row.algorithm != ALGORITHM:
        return None
    return Ed25519PublicKey.from_public_bytes(b64url_decode(row.public_key))


def public_keys(conn: Connection) -> list[dict[str, Any]]:
    """Every key the city signed with, as JWKs (RFC 8037), newest first: what verifiers fetch."""
    rows = conn.execute(sa.select(signing_keys).order_by(signing_keys.c.created_at.desc(),
                                                         signing_keys.c.key_id)).all()
    return [{"kty": "OKP", "crv": "Ed25519", "x": row.public_key, "kid": row.key_id, "alg": "EdDSA", "use": "sig"}
            for row in rows if row.algorithm == ALGORITHM]


# -- issuing ------------------------------------------------------------------------------------------------

def type_code(type: str) -> str:
    """The short form of a certificate type in its number: the initials of its words (business_licence:
    BL), or the first three letters of a one-word type."""
    words = [w for w in re.split(r"[^A-Za-z0-9]+", type) if w]
    if not words:
        return "X"
    code = "".join(w[0] for w in words) if len(words) > 1 else words[0][:3]
    return code.upper()[:4]


def new_number(type: str, now: datetime, zone: ZoneInfo) -> str:
    """WC-<type>-<yyyymmdd>-<6 random base32 characters>; the date is the city's (`zone`)."""
    random_part = "".join(secrets.choice(NUMBER_ALPHABET) for _ in range(NUMBER_RANDOM))
    return f"WC-{type_code(type)}-{now.astimezone(zone):%Y%m%d}-{random_part}"


def normalize_number(number: str) -> str:
    """A number as typed in: without spaces, upper case, and the look-alikes of Crockford's base32."""
    text = re.sub(r"\s+", "", number).upper()
    head, _, tail = text.rpartition("-")
    return f"{head}-{tail.translate(str.maketrans('OIL', '011'))}" if head else text


def issue(conn: Connection, *, key: SigningKey, type: str, name_zh: str, name_en: str, holder_id: int,
          holder_name: str, application_id: int | None, application_number: str | None, department_code: str,
          department_name_zh: str, department_name_en: str, fields: Mapping[str, Any], valid_days: int | None,
          now: datetime, holder_id_number: str | None = None, by: str | None = None) -> dict[str, Any]:
    """Sign and store a certificate; `valid_days` None: valid until revoked. Returns the stored certificate."""
    for name, value in (("type", type), ("name_zh", name_zh), ("name_en", name_en), ("holder_name", holder_name),
                        ("department_code", department_code)):
        if not value or not value.strip():
            raise _invalid(f"{name} is required", f"缺少 {name}")
    if valid_days is not None and valid_days <= 0:
        raise _invalid("valid_days must be positive", "有效天数必须为正数")
    content = _check_json(dict(fields), "fields")
    retired = conn.execute(sa.select(signing_keys.c.retired_at).where(signing_keys.c.key_id == key.key_id)).first()
    if retired is None or retired.retired_at is not None:
        raise Conflict(f"the signing key {key.key_id} is not the city's current key",
                       message_zh=f"签名密钥 {key.key_id} 不是本市当前的密钥", code="certificate.key_retired")
    issued_at = now.astimezone(UTC).replace(microsecond=0)
    valid_until = issued_at + timedelta(days=valid_days) if valid_days is not None else None
    holder: dict[str, Any] = {"id": holder_id, "name": holder_name}
    if holder_id_number:
        holder["id_number_masked"] = mask_id_number(holder_id_number)
    for _ in range(5):
        number = new_number(type, issued_at, city_timezone(conn))
        document = {
            "@type": DOCUMENT_TYPE, "version": DOCUMENT_VERSION, "number": number, "type": type,
            "name_zh": name_zh, "name_en": name_en, "holder": holder,
            "issuer": {"department": department_code, "name_zh": department_name_zh,
                       "name_en": department_name_en},
            "issued_at": _iso(issued_at), "valid_until": _iso(valid_until), "fields": content,
            "application": application_number, "key_id": key.key_id,
        }
        row = {"number": number, "type": type, "holder_id": holder_id, "application_id": application_id,
               "department_code": department_code, "issued_at": issued_at, "valid_until": valid_until,
               "document": document, "signature": key.sign(canonical(document)), "key_id": key.key_id}
        try:
            with conn.begin_nested():
                conn.execute(certificates.insert().values(**row))
        except sa.exc.IntegrityError:
            if conn.execute(sa.select(certificates.c.id).where(certificates.c.number == number)).first():
                continue  # the random part came up twice; draw again
            raise NotFound(f"no applicant {holder_id} or application {application_id}",
                           message_zh=f"申请人 {holder_id} 或办件 {application_id} 不存在",
                           code="certificate.holder_not_found") from None
        record_audit(conn, at=now, actor=by or f"department:{department_code}", action="certificate.issue",
                     target=f"certificate:{number}",
                     detail={"type": type, "holder_id": holder_id, "application": application_number,
                             "key_id": key.key_id})
        return get_certificate(conn, number)
    raise Conflict("could not draw a free certificate number", message_zh="无法生成未被占用的证照编号",
                   code="certificate.number_exhausted")


# -- reading ------------------------------------------------------------------------------------------------

def _as_dict(row: Any) -> dict[str, Any]:
    return {name: row._mapping[name] for name in (
        "number", "type", "holder_id", "application_id", "department_code", "issued_at", "valid_until",
        "document", "signature", "key_id", "revoked_at", "revoked_by", "revoked_reason")}


def _row(conn: Connection, number: str, *, lock: bool = False) -> Any:
    query = sa.select(certificates).where(certificates.c.number == number)
    if lock and conn.dialect.name == "postgresql":
        query = query.with_for_update()
    return conn.execute(query).first()


def get_certificate(conn: Connection, number: str) -> dict[str, Any]:
    row = _row(conn, normalize_number(number))
    if row is None:
        raise NotFound(f"no certificate {number}", message_zh=f"没有编号为 {number} 的证照",
                       code="certificate.not_found")
    return _as_dict(row)


def status_of(certificate: Mapping[Any, Any], now: datetime) -> str:
    """valid, revoked or expired, by the stored row (its signature is `verify_number`'s business)."""
    if certificate["revoked_at"] is not None:
        return "revoked"
    if certificate["valid_until"] is not None and certificate["valid_until"] <= now:
        return "expired"
    return "valid"


def wallet(conn: Connection, holder_id: int, *, now: datetime) -> list[dict[str, Any]]:
    """A holder's certificates (卡包), newest first, each with its status."""
    rows = conn.execute(sa.select(certificates).where(certificates.c.holder_id == holder_id)
                        .order_by(certificates.c.issued_at.desc(), certificates.c.id.desc())).all()
    return [{**_as_dict(row), "status": status_of(row._mapping, now)} for row in rows]


def held_certificate(conn: Connection, holder_id: int, type: str, now: datetime, *,
                     verified: bool = True) -> dict[str, Any] | None:
    """The holder's newest valid certificate of `type`, or None: what once-only pre-filling reads. With
    `verified=False`, the newest one the database says is valid, its signature not yet checked (so that a
    caller can tell "holds none" from "holds one that does not verify")."""
    rows = conn.execute(
        sa.select(certificates)
        .where(certificates.c.holder_id == holder_id, certificates.c.type == type,
               certificates.c.revoked_at.is_(None),
               sa.or_(certificates.c.valid_until.is_(None), certificates.c.valid_until > now))
        .order_by(certificates.c.issued_at.desc(), certificates.c.id.desc())).all()
    if not verified:
        return _as_dict(rows[0]) if rows else None
    # The database row says valid; the certificate is used only if its signature says so too.
    for row in rows:
        if verify_number(conn, row.number, now).status == "valid":
            return _as_dict(row)
    return None


def export_certificate(conn: Connection, number: str, *, holder_id: int) -> dict[str, Any]:
    """The holder's certificate with what it takes to verify it offline. Another holder's number is
    NotFound, as a number never issued is."""
    row = _row(conn, normalize_number(number))
    if row is None or row.holder_id != holder_id:
        raise NotFound(f"no certificate {number}", message_zh=f"没有编号为 {number} 的证照",
                       code="certificate.not_found")
    public = conn.execute(sa.select(signing_keys.c.public_key).where(signing_keys.c.key_id == row.key_id)).scalar()
    return {"document": row.document, "signature": row.signature, "public_key": public, "algorithm": ALGORITHM}


# -- verifying ----------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Verdict:
    """What a verification found, with the reason in both languages."""

    status: str  # one of STATUSES
    reason: str
    reason_zh: str
    number: str | None = None
    document: dict[str, Any] | None = None  # the certificate as issued, when there is one to show
    revoked_at: datetime | None = None
    revoked_reason: str | None = None
    valid_until: datetime | None = None

    @property
    def valid(self) -> bool:
        return self.status == "valid"

    def localized(self, locale: str) -> str:
        return self.reason_zh if locale.startswith("zh") else self.reason

    def public(self) -> dict[str, Any]:
        """What anyone checking a certificate is told: the verdict and the certificate's face, with the
        holder's name masked (the page is public; the number alone must not reveal who holds it)."""
        doc = self.document or {}
        holder = str((doc.get("holder") or {}).get("name") or "")
        issuer = doc.get("issuer") or {}
        face = None if not doc else {
            "number": doc.get("number"), "name_zh": doc.get("name_zh"), "name_en": doc.get("name_en"),
            "holder": holder[:1] + "*" * max(len(holder) - 1, 1) if holder else None,
            "issuer_zh": issuer.get("name_zh"), "issuer_en": issuer.get("name_en"),
            "issued_at": doc.get("issued_at"), "valid_until": doc.get("valid_until")}
        return {"status": self.status, "reason": self.reason, "reason_zh": self.reason_zh, "number": self.number,
                "revoked_at": _iso(self.revoked_at), "revoked_reason": self.revoked_reason, "certificate": face}


def _forged(number: str | None, reason: str, reason_zh: str) -> Verdict:
    return Verdict("forged", reason, reason_zh, number)


def _signature_holds(public: Ed25519PublicKey, document: Mapping[str, Any], signature: Any) -> bool:
    if not isinstance(signature, str):
        return False
    try:
        public.verify(b64url_decode(signature), canonical(document))
    except (InvalidSignature, ValueError, TypeError):  # ValueError: NaN and its kin from a lenient parser
        return False
    return True


def _judge(row: Any, now: datetime, zone: ZoneInfo) -> Verdict:
    """The verdict on a genuine certificate: revoked, expired or valid (the day it ended in the city's `zone`)."""
    number, document = row.number, row.document
    if row.revoked_at is not None:
        when = row.revoked_at.astimezone(zone).strftime("%Y-%m-%d")
        return Verdict("revoked", f"revoked on {when}: {row.revoked_reason}",
                       f"已于 {when} 撤销：{row.revoked_reason}", number, document,
                       revoked_at=row.revoked_at, revoked_reason=row.revoked_reason, valid_until=row.valid_until)
    if row.valid_until is not None and row.valid_until <= now:
        when = row.valid_until.astimezone(zone).strftime("%Y-%m-%d")
        return Verdict("expired", f"expired on {when}", f"已于 {when} 过期", number, document,
                       valid_until=row.valid_until)
    return Verdict("valid", "issued by the city, signature valid, not revoked",
                   "本市签发，签名有效，未撤销", number, document, valid_until=row.valid_until)


def verify(conn: Connection, document: Any, signature: Any, now: datetime) -> Verdict:
    """Check a certificate presented to us (a holder's export, a copy): its signature under the key it
    names, that the city issued exactly this document under its number, then revocation and expiry."""
    number = document.get("number") if isinstance(document, Mapping) else None
    if not isinstance(document, Mapping) or document.get("@type") != DOCUMENT_TYPE or not isinstance(number, str):
        return _forged(None, "not a certificate of this city", "不是本市的电子证照")
    public = _public_key(conn, document.get("key_id"))
    if public is None:
        return _forged(number, "signed with a key this city never used", "签名密钥不是本市使用过的密钥")
    if not _signature_holds(public, document, signature):
        return _forged(number, "the signature does not match the document", "签名与证照内容不符")
    row = _row(conn, number)
    if row is None:
        return Verdict("unknown", "this city issued no certificate with this number",
                       "本市未签发此编号的证照", number)
    if canonical(row.document) != canonical(document) or row.key_id != document.get("key_id"):
        return _forged(number, "the document differs from the one the city issued under this number",
                       "证照内容与本市以此编号签发的不一致")
    if not _columns_match(row):  # expiry is judged by the row's columns: they must say what was signed
        return _forged(number, "the stored certificate does not match its signature", "存档证照与其签名不符")
    return _judge(row, now, city_timezone(conn))


# The columns of a certificate row that repeat what its signed document says.
_SIGNED_COLUMNS = {"type": ("type",), "holder_id": ("holder", "id"), "department_code": ("issuer", "department"),
                   "key_id": ("key_id",), "number": ("number",)}


def _columns_match(row: Any) -> bool:
    """The row's columns say what its signed document says (a changed row does not)."""
    document = row.document
    for column, path in _SIGNED_COLUMNS.items():
        value: Any = document
        for part in path:
            value = value.get(part) if isinstance(value, Mapping) else None
        if value != row._mapping[column]:
            return False
    return document.get("issued_at") == _iso(row.issued_at) and document.get("valid_until") == _iso(row.valid_until)


def verify_number(conn: Connection, number: str, now: datetime) -> Verdict:
    """What the public verification page (the QR code's address) says of a number: the stored certificate,
    its signature checked again, so a changed database row shows as forged too."""
    number = normalize_number(number)
    row = _row(conn, number)
    if row is None:
        return Verdict("unknown", "this city issued no certificate with this number",
                       "本市未签发此编号的证照", number)
    document = row.document
    public = _public_key(conn, row.key_id)
    if not isinstance(document, Mapping) or public is None or not _signature_holds(public, document, row.signature):
        return _forged(number, "the stored certificate does not match its signature", "存档证照与其签名不符")
    if not _columns_match(row):
        return _forged(number, "the stored certificate does not match its signature", "存档证照与其签名不符")
    return _judge(row, now, city_timezone(conn))


# -- revoking -----------------------------------------------------------------------------------------------

def revoke(conn: Connection, number: str, *, by: str, department_code: str, reason: str,
           now: datetime) -> dict[str, Any]:
    """Revoke a certificate (注销/撤销): only its issuing department, with a reason, once."""
    number = normalize_number(number)
    row = _row(conn, number, lock=True)
    if row is None:
        raise NotFound(f"no certificate {number}", message_zh=f"没有编号为 {number} 的证照",
                       code="certificate.not_found")
    if row.department_code != department_code:
        raise PermissionDenied("only the issuing department may revoke a certificate",
                               message_zh="只有发证部门可以撤销证照", code="certificate.not_your_department")
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed("a reason is required to revoke a certificate", message_zh="撤销证照须说明理由",
                               code="certificate.reason_required")
    changed = conn.execute(certificates.update().where(certificates.c.id == row.id, certificates.c.revoked_at.is_(None))
                           .values(revoked_at=now, revoked_by=by, revoked_reason=reason)).rowcount
    if changed != 1:
        raise InvalidTransition("the certificate is already revoked", message_zh="该证照已撤销",
                                code="certificate.already_revoked")
    record_audit(conn, at=now, actor=by, action="certificate.revoke", target=f"certificate:{number}",
                 detail={"department": department_code, "reason": reason})
    return get_certificate(conn, number)

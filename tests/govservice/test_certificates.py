"""E-certificates: signed on issue, verified by document and by number, revoked by their department only."""

from __future__ import annotations

import base64
import re
import stat
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from wecity.core.clock import CITY_TZ
from wecity.core.db import metadata
from wecity.core.errors import (
    Conflict,
    DependencyUnavailable,
    InvalidTransition,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from wecity.govservice import certificate_pdf
from wecity.govservice import certificates as certs
from wecity.govservice.models import certificates
from wecity.identity.models import applicants, audit_log

from ..conftest import SEED_TIME, City

NOW = SEED_TIME
MARKET = "market_regulation"


class Gov:
    """A city with two applicants and its signing key, and a short way to issue."""

    def __init__(self, city: City) -> None:
        self.city = city
        self.var_dir = city.settings.var_dir

        def setup(conn: sa.Connection) -> tuple[int, int]:
            ids = [conn.execute(applicants.insert().values(
                kind="citizen", phone=f"1390000000{i}", display_name=name, profile={}, created_at=NOW,
            )).inserted_primary_key[0] for i, name in enumerate(("张三", "李四"))]
            return ids[0], ids[1]

        self.holder, self.other = self.write(setup)

    def write(self, fn: Callable[..., Any], *args: Any) -> Any:
        return self.city.db.write_sync(fn, *args)

    def read(self, fn: Callable[..., Any], *args: Any) -> Any:
        return self.city.db.read_sync(fn, *args)

    def issue(self, *, type: str = "business_licence", holder: int | None = None, valid_days: int | None = 365,
              at: Any = NOW, fields: dict[str, Any] | None = None) -> dict[str, Any]:
        def run(conn: sa.Connection) -> dict[str, Any]:
            return certs.issue(
                conn, key=certs.signing_key(conn, self.var_dir, at), type=type, name_zh="营业执照",
                name_en="Business Licence", holder_id=holder or self.holder, holder_name="张三",
                holder_id_number="430102199001011234", application_id=None, application_number="GS-0001",
                department_code=MARKET, department_name_zh="市场监督管理局",
                department_name_en="Market Regulation Bureau",
                fields=fields or {"enterprise_name": "岳麓山茶叶有限公司", "registered_capital": "100万元", "staff": 12},
                valid_days=valid_days, now=at)
        return self.write(run)

    def verify(self, document: Any, signature: Any, at: Any = NOW) -> certs.Verdict:
        return self.read(certs.verify, document, signature, at)

    def verify_number(self, number: str, at: Any = NOW) -> certs.Verdict:
        return self.read(certs.verify_number, number, at)

    def revoke(self, number: str, *, department: str = MARKET, reason: str = "营业执照被吊销",
               at: Any = NOW) -> dict[str, Any]:
        return self.write(lambda conn: certs.revoke(conn, number, by="user:7", department_code=department,
                                                    reason=reason, now=at))


@pytest.fixture
def gov(city: City) -> Gov:
    return Gov(city)


@pytest.fixture
def sqlite_gov(sqlite_city: City) -> Gov:
    return Gov(sqlite_city)


def test_issued_certificate_verifies_by_document_and_by_number(gov: Gov) -> None:
    cert = gov.issue()
    assert re.fullmatch(r"WC-BL-20261102-[0-9A-HJKMNP-TV-Z]{6}", cert["number"])
    document = cert["document"]
    assert document["@type"] == "WeCityCertificate" and document["version"] == 1
    assert document["holder"] == {"id": gov.holder, "name": "张三", "id_number_masked": "430***********1234"}
    assert document["valid_until"] == "2027-11-02T09:00:00+00:00"
    verdict = gov.verify(document, cert["signature"])
    assert (verdict.status, verdict.number, verdict.document) == ("valid", cert["number"], document)
    assert verdict.localized("zh_CN") == "本市签发，签名有效，未撤销"
    assert gov.verify_number(cert["number"]).status == "valid"
    # Typed in from paper: lower case, spaces, O for 0 and I or L for 1.
    assert gov.verify_number(f" {cert['number'].lower()} ").status == "valid"
    assert certs.normalize_number(" wc-bl-20261102-o1l2ab ") == "WC-BL-20261102-0112AB"
    actions = gov.read(lambda c: c.execute(sa.select(audit_log.c.action, audit_log.c.target)).all())
    assert ("certificate.issue", f"certificate:{cert['number']}") in actions


def test_a_changed_field_is_forged(gov: Gov) -> None:
    cert = gov.issue()
    changed = {**cert["document"], "fields": {**cert["document"]["fields"], "registered_capital": "1000万元"}}
    verdict = gov.verify(changed, cert["signature"])
    assert verdict.status == "forged"
    assert verdict.reason_zh == "签名与证照内容不符"
    later = {**cert["document"], "valid_until": "2099-01-01T00:00:00+00:00"}
    assert gov.verify(later, cert["signature"]).status == "forged"
    assert gov.verify(cert["document"], "A" * 86).status == "forged"
    assert gov.verify(cert["document"], "not base64!").status == "forged"
    assert gov.verify({"hello": "world"}, cert["signature"]).status == "forged"


def test_a_signature_by_another_key_is_forged(gov: Gov) -> None:
    cert = gov.issue()
    stranger = Ed25519PrivateKey.generate()
    document = {**cert["document"], "fields": {"enterprise_name": "假公司"}}
    signature = certs.b64url(stranger.sign(certs.canonical(document)))
    assert gov.verify(document, signature).status == "forged"  # names the city's key, signed by another
    raw = stranger.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    own_key = {**document, "key_id": certs.key_id_of(raw)}
    verdict = gov.verify(own_key, certs.b64url(stranger.sign(certs.canonical(own_key))))
    assert (verdict.status, verdict.reason) == ("forged", "signed with a key this city never used")


def test_a_number_the_city_never_issued_is_unknown(gov: Gov) -> None:
    cert = gov.issue()
    assert gov.verify_number("WC-BL-20261102-ZZZZZZ").status == "unknown"
    # Even a document signed with the city's key: the city keeps every certificate it issues.
    document = {**cert["document"], "number": "WC-BL-20261102-ZZZZZZ"}
    key = gov.write(lambda conn: certs.signing_key(conn, gov.var_dir))
    assert gov.verify(document, key.sign(certs.canonical(document))).status == "unknown"


def test_a_changed_database_row_shows_as_forged(gov: Gov) -> None:
    first, second = gov.issue(), gov.issue()
    document = {**first["document"], "fields": {**first["document"]["fields"], "staff": 500}}
    with gov.city.db.engine.begin() as conn:
        conn.execute(certificates.update().where(certificates.c.number == first["number"]).values(document=document))
        conn.execute(certificates.update().where(certificates.c.number == second["number"])
                     .values(valid_until=NOW + timedelta(days=9999)))
    assert gov.verify_number(first["number"]).status == "forged"
    assert gov.verify_number(second["number"]).status == "forged"
    # The holder's copy no longer matches what is stored either.
    assert gov.verify(first["document"], first["signature"]).status == "forged"
    # Nor does a genuine copy whose row's expiry was moved: expiry is read from the row, so it is forged,
    # never "valid" past the date that was signed (nor "expired" before it).
    assert gov.verify(second["document"], second["signature"]).status == "forged"
    third = gov.issue()
    with gov.city.db.engine.begin() as conn:
        conn.execute(certificates.update().where(certificates.c.number == third["number"])
                     .values(valid_until=NOW - timedelta(days=1)))
    assert gov.verify(third["document"], third["signature"]).status == "forged"
    fourth = gov.issue()
    with gov.city.db.engine.begin() as conn:
        conn.execute(certificates.update().where(certificates.c.number == fourth["number"])
                     .values(holder_id=gov.other))
    assert gov.verify(fourth["document"], fourth["signature"]).status == "forged"


def test_only_the_issuing_department_revokes(gov: Gov) -> None:
    cert = gov.issue()
    with pytest.raises(PermissionDenied) as caught:
        gov.revoke(cert["number"], department="housing")
    assert caught.value.code == "certificate.not_your_department"
    assert gov.verify_number(cert["number"]).status == "valid"
    with pytest.raises(NotFound):
        gov.revoke("WC-BL-20261102-ZZZZZZ")


def test_a_revoked_certificate_says_when_and_why_and_is_revoked_once(gov: Gov) -> None:
    cert = gov.issue()
    with pytest.raises(ValidationFailed):
        gov.revoke(cert["number"], reason="  ")
    revoked = gov.revoke(cert["number"], at=NOW + timedelta(days=30))
    assert revoked["revoked_reason"] == "营业执照被吊销" and revoked["revoked_by"] == "user:7"
    for verdict in (gov.verify_number(cert["number"], NOW + timedelta(days=31)),
                    gov.verify(cert["document"], cert["signature"], NOW + timedelta(days=31))):
        assert verdict.status == "revoked"
        assert verdict.revoked_reason == "营业执照被吊销"
        assert verdict.revoked_at == NOW + timedelta(days=30)
        assert verdict.reason_zh == "已于 2026-12-02 撤销：营业执照被吊销"
    with pytest.raises(InvalidTransition) as caught:
        gov.revoke(cert["number"])
    assert isinstance(caught.value, Conflict) and caught.value.code == "certificate.already_revoked"
    actions = gov.read(lambda c: c.execute(sa.select(audit_log.c.action, audit_log.c.actor)).all())
    assert ("certificate.revoke", "user:7") in actions


def test_a_certificate_expires_after_valid_until(gov: Gov) -> None:
    cert = gov.issue(valid_days=10)
    assert gov.verify_number(cert["number"], NOW + timedelta(days=10) - timedelta(seconds=1)).status == "valid"
    verdict = gov.verify_number(cert["number"], NOW + timedelta(days=10))
    assert (verdict.status, verdict.reason) == ("expired", "expired on 2026-11-12")
    assert gov.verify(cert["document"], cert["signature"], NOW + timedelta(days=11)).status == "expired"
    forever = gov.issue(valid_days=None)
    assert forever["valid_until"] is None
    assert gov.verify_number(forever["number"], NOW + timedelta(days=36500)).status == "valid"


def test_certificates_signed_before_a_rotation_still_verify(gov: Gov) -> None:
    old = gov.issue()
    old_key = gov.write(lambda conn: certs.signing_key(conn, gov.var_dir))
    new_key = gov.write(lambda conn: certs.rotate_key(conn, gov.var_dir, NOW + timedelta(days=1)))
    assert new_key.key_id != old_key.key_id
    assert gov.write(lambda conn: certs.signing_key(conn, gov.var_dir)).key_id == new_key.key_id
    new = gov.issue(at=NOW + timedelta(days=2))
    assert new["key_id"] == new_key.key_id
    for cert in (old, new):
        assert gov.verify(cert["document"], cert["signature"], NOW + timedelta(days=3)).status == "valid"
        assert gov.verify_number(cert["number"], NOW + timedelta(days=3)).status == "valid"
    # A key retired meanwhile signs nothing more.
    with pytest.raises(Conflict):
        gov.write(lambda conn: certs.issue(
            conn, key=old_key, type="permit", name_zh="许可证", name_en="Permit", holder_id=gov.holder,
            holder_name="张三", application_id=None, application_number=None, department_code=MARKET,
            department_name_zh="市场监督管理局", department_name_en="Market Regulation Bureau", fields={},
            valid_days=None, now=NOW + timedelta(days=2)))
    jwks = gov.read(certs.public_keys)
    assert [k["kid"] for k in jwks] == [new_key.key_id, old_key.key_id]
    assert jwks[0] == {"kty": "OKP", "crv": "Ed25519", "x": new_key.public_key, "kid": new_key.key_id,
                       "alg": "EdDSA", "use": "sig"}


def test_the_key_file_is_private_and_the_key_is_not_in_the_database(gov: Gov) -> None:
    cert = gov.issue()
    path = gov.var_dir / "keys" / "certificates-ed25519.pem"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    private = serialization.load_pem_private_key(path.read_bytes(), password=None)
    assert isinstance(private, Ed25519PrivateKey)
    raw = private.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                serialization.NoEncryption())
    secrets = {raw.hex(), certs.b64url(raw), base64.b64encode(raw).decode()[:40],
               path.read_text().splitlines()[1]}
    key = gov.write(lambda conn: certs.signing_key(conn, gov.var_dir))
    assert key.key_id == cert["key_id"]
    assert raw.hex() not in repr(key) and "private" not in repr(key)

    def everything(conn: sa.Connection) -> str:
        return repr([conn.execute(sa.select(table)).all() for table in metadata.sorted_tables])

    dump = gov.read(everything)
    assert not [s for s in secrets if s in dump]


def test_the_export_verifies_offline_with_the_published_key(gov: Gov) -> None:
    cert = gov.issue()
    exported = gov.read(lambda conn: certs.export_certificate(conn, cert["number"], holder_id=gov.holder))
    assert exported["algorithm"] == "Ed25519" and set(exported) == {"document", "signature", "public_key",
                                                                   "algorithm"}
    # What a verifier elsewhere does, with nothing of this city's code.
    public = Ed25519PublicKey.from_public_bytes(certs.b64url_decode(exported["public_key"]))
    public.verify(certs.b64url_decode(exported["signature"]), certs.canonical(exported["document"]))
    assert gov.verify(exported["document"], exported["signature"]).status == "valid"
    with pytest.raises(NotFound):
        gov.read(lambda conn: certs.export_certificate(conn, cert["number"], holder_id=gov.other))


def test_held_certificate_is_the_newest_valid_one(gov: Gov) -> None:
    assert gov.read(certs.held_certificate, gov.holder, "business_licence", NOW) is None
    older = gov.issue(at=NOW - timedelta(days=20))
    newer = gov.issue(at=NOW - timedelta(days=10))
    gov.issue(type="food_permit")
    gov.issue(holder=gov.other)
    held = gov.read(certs.held_certificate, gov.holder, "business_licence", NOW)
    assert held is not None and held["number"] == newer["number"]
    gov.revoke(newer["number"])
    held = gov.read(certs.held_certificate, gov.holder, "business_licence", NOW)
    assert held is not None and held["number"] == older["number"]
    assert gov.read(certs.held_certificate, gov.holder, "business_licence", NOW + timedelta(days=400)) is None
    wallet = gov.read(lambda conn: certs.wallet(conn, gov.holder, now=NOW))
    assert [(c["type"], c["status"]) for c in wallet] == [
        ("food_permit", "valid"), ("business_licence", "revoked"), ("business_licence", "valid")]


def test_the_canonical_form_is_sorted_compact_utf8_and_has_integers_only() -> None:
    assert certs.canonical({"b": [1, None, True], "a": "长沙", "@type": "x"}) == \
        '{"@type":"x","a":"长沙","b":[1,null,true]}'.encode()
    assert certs.canonical({"a": "line\nbreak\u0001"}) == b'{"a":"line\\nbreak\\u0001"}'


def test_a_certificate_holds_no_decimals_and_no_unknown_holder(sqlite_gov: Gov) -> None:
    with pytest.raises(ValidationFailed):
        sqlite_gov.issue(fields={"area_m2": 12.5})
    with pytest.raises(ValidationFailed):
        sqlite_gov.issue(fields={"big": 2**60})
    with pytest.raises(NotFound):
        sqlite_gov.issue(holder=999_999)


def test_the_pdf_has_the_certificate_and_a_link_to_its_verification_page(sqlite_gov: Gov) -> None:
    cert = sqlite_gov.issue()
    url = f"https://city.example.cn/verify/{cert['number']}"
    pdf = certificate_pdf.render_pdf(cert, url, zone=CITY_TZ, labels={"enterprise_name": ("名称", "Name")})
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
    assert pdf.count(b"/Type /Page\n") == 1
    assert f"/URI ({url})".encode() in pdf  # the address under the QR code is a link too
    assert b"/Subtype /Image" in pdf  # the QR code


def test_without_a_chinese_font_the_pdf_is_refused_with_the_package_to_install(
        sqlite_gov: Gov, monkeypatch: pytest.MonkeyPatch) -> None:
    cert = sqlite_gov.issue()
    monkeypatch.setattr(certificate_pdf, "FONT_PATHS", (("/nonexistent/font.ttc", 0),))
    with pytest.raises(DependencyUnavailable) as caught:
        certificate_pdf.render_pdf(cert, "https://city.example.cn/verify/x", zone=CITY_TZ)
    assert "fonts-wqy-microhei" in caught.value.message and "fonts-wqy-microhei" in caught.value.message_zh

"""An e-certificate as a printable PDF: both languages, its content, and a QR code of its verification page."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import qrcode
from fpdf import FPDF
from fpdf.fonts import FontFace
from qrcode.constants import ERROR_CORRECT_M

from wecity.core.errors import DependencyUnavailable

# Fonts with Chinese glyphs (and Latin ones, so one font does the whole page), first found is used: the
# file and, for a collection (.ttc), which font in it. Debian and Ubuntu package names in FONT_PACKAGE.
FONT_PATHS: tuple[tuple[str, int], ...] = (
    ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", 0),
    ("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc", 0),
    ("/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf", 0),
    ("/usr/share/fonts/truetype/arphic/uming.ttc", 0),
    ("/usr/share/fonts/wqy-microhei/wqy-microhei.ttc", 0),  # Fedora
    ("/System/Library/Fonts/STHeiti Medium.ttc", 0),  # macOS
)
FONT_PACKAGE = "fonts-wqy-microhei"
FONT = "cjk"

INK = (20, 20, 20)
MUTED = (110, 110, 110)
ACCENT = (160, 20, 20)  # the red of an official seal
PAGE_MARGIN = 18.0
QR_SIZE = 42.0


def cjk_font() -> tuple[str, int]:
    """The first font of FONT_PATHS on this machine; DependencyUnavailable if there is none, rather than a
    certificate of empty boxes."""
    for path, index in FONT_PATHS:
        if Path(path).is_file():
            return path, index
    raise DependencyUnavailable(
        f"no font with Chinese characters for certificates; install the package {FONT_PACKAGE}",
        message_zh=f"缺少可显示中文的字体，无法生成证照 PDF；请安装软件包 {FONT_PACKAGE}",
        code="certificate.font_missing", details={"package": FONT_PACKAGE, "looked_in": [p for p, _ in FONT_PATHS]})


def _date(text: str | None, zone: ZoneInfo) -> str | None:
    if not text:
        return None
    return datetime.fromisoformat(text).astimezone(zone).strftime("%Y-%m-%d")


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "是 Yes" if value else "否 No"
    if value is None:
        return "—"
    if isinstance(value, Sequence) and all(isinstance(v, str) for v in value):
        return "、".join(value)
    return json.dumps(value, ensure_ascii=False)


def _qr_image(data: str) -> Any:
    code = qrcode.QRCode(error_correction=ERROR_CORRECT_M, box_size=8, border=2)
    code.add_data(data)
    code.make(fit=True)
    return code.make_image().get_image()


def render_pdf(certificate: Mapping[str, Any], verify_url: str, *, zone: ZoneInfo,
               labels: Mapping[str, tuple[str, str]] | None = None) -> bytes:
    """The certificate (as `certificates.issue` returns it) on one A4 page, its dates as days in `zone` (the
    city's). `labels` names the content's fields in Chinese and English (field -> (zh, en)); a field without
    a label shows its key."""
    document: Mapping[str, Any] = certificate["document"]
    holder: Mapping[str, Any] = document.get("holder") or {}
    issuer: Mapping[str, Any] = document.get("issuer") or {}
    font_path, font_index = cjk_font()

    pdf = FPDF(orientation="portrait", unit="mm", format="A4")
    pdf.set_title(f"{document['name_zh']} {document['number']}")
    pdf.set_subject(document["name_en"])
    pdf.set_creator("WeCity")
    pdf.set_lang("zh-CN")
    # The certificate's own time, so that the same certificate renders to the same bytes.
    issued = certificate.get("issued_at")
    if isinstance(issued, datetime):
        pdf.set_creation_date(issued)
    pdf.set_margins(PAGE_MARGIN, PAGE_MARGIN, PAGE_MARGIN)
    pdf.set_auto_page_break(True, margin=PAGE_MARGIN)
    pdf.add_font(FONT, "", font_path, collection_font_number=font_index)
    pdf.add_page()
    width = pdf.w - 2 * PAGE_MARGIN

    # A double frame, as paper certificates have.
    pdf.set_draw_color(*ACCENT)
    pdf.set_line_width(0.8)
    pdf.rect(8, 8, pdf.w - 16, pdf.h - 16)
    pdf.set_line_width(0.2)
    pdf.rect(10, 10, pdf.w - 20, pdf.h - 20)

    pdf.set_text_color(*MUTED)
    pdf.set_font(FONT, size=10)
    pdf.cell(width, 6, "电子证照 · Electronic Certificate", align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.set_text_color(*ACCENT)
    pdf.set_font(FONT, size=26)
    pdf.multi_cell(width, 12, document["name_zh"], align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(FONT, size=15)
    pdf.multi_cell(width, 8, document["name_en"], align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    pdf.set_text_color(*INK)
    pdf.set_font(FONT, size=11)
    pdf.cell(width, 6, f"证照编号 No.  {document['number']}", align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(5)

    rows: list[tuple[str, str]] = [("持证人 Holder", _text(holder.get("name")))]
    if holder.get("id_number_masked"):
        rows.append(("证件号码 ID number", holder["id_number_masked"]))
    for key, value in (document.get("fields") or {}).items():
        zh, en = (labels or {}).get(key, ("", key))
        rows.append((f"{zh} {en}".strip(), _text(value)))
    rows.append(("发证机关 Issued by", f"{issuer.get('name_zh', '')}\n{issuer.get('name_en', '')}".strip()))
    rows.append(("发证日期 Issued on", _date(document.get("issued_at"), zone) or "—"))
    rows.append(("有效期至 Valid until", _date(document.get("valid_until"), zone) or "长期有效 No expiry"))
    if document.get("application"):
        rows.append(("办件编号 Application", str(document["application"])))

    pdf.set_font(FONT, size=11)
    pdf.set_draw_color(*MUTED)
    label_style = FontFace(color=MUTED, fill_color=(246, 243, 238))
    with pdf.table(col_widths=(38, 96), width=width, line_height=7, first_row_as_headings=False,
                   text_align=("LEFT", "LEFT"), padding=2) as table:
        for label, value in rows:
            row = table.row()
            row.cell(label, style=label_style)
            row.cell(value)

    if certificate.get("revoked_at") is not None:
        pdf.ln(4)
        pdf.set_text_color(*ACCENT)
        pdf.set_font(FONT, size=14)
        when = certificate["revoked_at"].astimezone(zone).strftime("%Y-%m-%d")
        pdf.multi_cell(width, 8, f"已撤销 REVOKED {when}：{certificate.get('revoked_reason') or ''}",
                       align="C", new_x="LMARGIN", new_y="NEXT")
        pdf.set_text_color(*INK)

    # The QR code of the verification page, bottom right, and how to verify beside it.
    top = pdf.h - PAGE_MARGIN - QR_SIZE - 4
    pdf.image(_qr_image(verify_url), x=pdf.w - PAGE_MARGIN - QR_SIZE, y=top, w=QR_SIZE, h=QR_SIZE,
              alt_text=verify_url)
    text_width = width - QR_SIZE - 6
    pdf.set_xy(PAGE_MARGIN, top + 2)
    pdf.set_font(FONT, size=9)
    pdf.set_text_color(*INK)
    pdf.multi_cell(text_width, 5, "核验：扫描右侧二维码，或访问以下网址查看本证照的状态。\n"
                                  "To verify: scan the QR code, or open this address to see the certificate's status.",
                   align="L", new_x="LMARGIN", new_y="NEXT")
    pdf.set_text_color(*ACCENT)
    pdf.multi_cell(text_width, 5, verify_url, link=verify_url, align="L", new_x="LMARGIN", new_y="NEXT")
    pdf.set_text_color(*MUTED)
    pdf.set_font(FONT, size=7.5)
    pdf.multi_cell(text_width, 4, f"本证照以 Ed25519 数字签名（密钥 {document.get('key_id')}），"
                                  "电子版可离线核验。 Digitally signed (Ed25519, key "
                                  f"{document.get('key_id')}); the electronic copy verifies offline.",
                   align="L", new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())

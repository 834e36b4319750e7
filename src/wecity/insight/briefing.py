"""The daily briefing (每日简报) a leader can forward: one day's KPIs against the day before, what is overdue
now, and the week's hot spots, on A4 in Chinese and English (fpdf2, the certificates' CJK font)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fpdf import FPDF
from fpdf.fonts import FontFace
from sqlalchemy.engine import Connection

from wecity.geo.service import city_timezone
from wecity.govservice.certificate_pdf import FONT, cjk_font
from wecity.insight import queries
from wecity.insight.frame import Frame

INK = (20, 20, 20)
MUTED = (90, 90, 90)
MARGIN = 15.0
OVERDUE_SHOWN = 15
HOTSPOT_DAYS = 7
HOTSPOTS_SHOWN = 8


def briefing_data(conn: Connection, day: date, now: datetime, frame: Frame | None = None) -> dict[str, Any]:
    """What the briefing says about `day` (a local date): its KPIs and the day before's, the overdue cases
    now (most overdue first), and the significant hot spots of the week up to it."""
    from wecity.ai.hotspots import hotspots

    f = queries.Filters(day, day)
    figures = queries.figures(conn, f, now, frame)
    overdue = queries.case_list(conn, f, now, which="overdue")
    zone = city_timezone(conn)
    week_end = datetime.combine(day + timedelta(days=1), datetime.min.time(), zone)
    hot = hotspots(conn, now=min(now, week_end), days=HOTSPOT_DAYS)
    return {"day": day, "figures": figures, "overdue": overdue, "hotspots": hot, "zone": zone}


def render(data: dict[str, Any], *, city: str, generated: datetime) -> bytes:
    font_path, font_index = cjk_font()
    pdf = FPDF(orientation="portrait", unit="mm", format="A4")
    day: date = data["day"]
    zone: ZoneInfo = data["zone"]
    pdf.set_title(f"{city} 每日简报 Daily briefing {day.isoformat()}")
    pdf.set_creator("WeCity")
    pdf.set_lang("zh-CN")
    pdf.set_creation_date(generated)
    pdf.set_margins(MARGIN, MARGIN, MARGIN)
    pdf.set_auto_page_break(True, margin=MARGIN)
    pdf.add_font(FONT, "", font_path, collection_font_number=font_index)
    pdf.add_page()
    width = pdf.w - 2 * MARGIN

    pdf.set_text_color(*INK)
    pdf.set_font(FONT, size=17)
    pdf.cell(width, 9, f"{city} · 每日简报 Daily briefing", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(FONT, size=10)
    pdf.set_text_color(*MUTED)
    pdf.cell(width, 6, f"{day.isoformat()}（对比前一日 against the day before）· 生成于 generated "
             f"{generated.astimezone(zone).strftime('%Y-%m-%d %H:%M')}", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)

    _heading(pdf, width, "当日指标 The day's figures")
    rows = [["指标 KPI", "当日 The day", "前一日 Day before", "变化 Change"]]
    for k in data["figures"]["kpis"]:
        rows.append([f"{k['name_zh']} {k['name_en']}", _value(k, k["value"]), _value(k, k["previous"]),
                     _change(k)])
    _table(pdf, rows, (0.46, 0.16, 0.18, 0.20))

    overdue = data["overdue"]
    _heading(pdf, width, f"当前超期 Overdue now: {data['figures']['overdue']}")
    if overdue:
        rows = [["案件 Case", "类别 Category", "区域 District", "部门 Department", "时限 Due"]]
        for c in overdue[:OVERDUE_SHOWN]:
            rows.append([f"#{c['id']}", c["category_zh"], c["area_zh"] or "—", c["department_zh"] or "—",
                         c["due_at"].astimezone(zone).strftime("%m-%d %H:%M") if c["due_at"] else "—"])
        _table(pdf, rows, (0.12, 0.24, 0.18, 0.30, 0.16))
        more = max(data["figures"]["overdue"], len(overdue)) - OVERDUE_SHOWN  # the list is cut; the count is not
        if more > 0:
            _note(pdf, width, f"另有 {more} 件，见 /insight/cases?which=overdue · {more} more on the KPI pages")
    else:
        _note(pdf, width, "无超期案件 Nothing is overdue.")

    hot = data["hotspots"]
    features = sorted(hot.get("features", []), key=lambda f: -f["properties"]["gi_star"])[:HOTSPOTS_SHOWN]
    _heading(pdf, width, f"近 {HOTSPOT_DAYS} 日热点 Hot spots of the last {HOTSPOT_DAYS} days: {len(hot.get('features', []))}")
    if features:
        rows = [["H3 单元 cell", "案件 Cases", "Gi*", "q"]]
        for feature in features:
            p = feature["properties"]
            rows.append([str(feature["id"]), str(p["cases"]), f"{p['gi_star']:.2f}", f"{p['q']:.4f}"])
        _table(pdf, rows, (0.40, 0.20, 0.20, 0.20))
    else:
        _note(pdf, width, "无统计显著的热点 No statistically significant cluster.")
    pdf.ln(2)
    _note(pdf, width, "口径见 /insight（每项指标下的“口径”）与 docs/insight.md · Definitions: /insight and "
                      "docs/insight.md. 热点：H3 单元上的 Getis-Ord Gi*，经错误发现率校正 · Hot spots: Getis-Ord "
                      "Gi* on H3 cells, false-discovery-rate corrected.")
    return bytes(pdf.output())


def _heading(pdf: FPDF, width: float, text: str) -> None:
    pdf.ln(3)
    pdf.set_text_color(*INK)
    pdf.set_font(FONT, size=12.5)
    pdf.cell(width, 7, text, new_x="LMARGIN", new_y="NEXT")


def _note(pdf: FPDF, width: float, text: str) -> None:
    pdf.set_text_color(*MUTED)
    pdf.set_font(FONT, size=9)
    pdf.multi_cell(width, 5, text, new_x="LMARGIN", new_y="NEXT")


def _table(pdf: FPDF, rows: list[list[str]], widths: tuple[float, ...]) -> None:
    pdf.set_text_color(*INK)
    pdf.set_font(FONT, size=9)
    # Headings in the same face (the CJK font has no bold), set apart by a grey ground.
    headings = FontFace(emphasis="", fill_color=(232, 232, 232))
    with pdf.table(col_widths=widths, text_align="LEFT", line_height=5.5, first_row_as_headings=True,
                   headings_style=headings) as table:
        for values in rows:
            row = table.row()
            for value in values:
                row.cell(value)


def _value(k: dict[str, Any], value: float | None) -> str:
    if value is None:
        return "—"
    if k["unit"] == "percent":
        return f"{value:.1f}%"
    if k["unit"] == "stars":
        return f"{value:.2f}"
    return f"{value:.0f}"


def _change(k: dict[str, Any]) -> str:
    if k["change"] is None or not k["change"]:
        return "＝" if k["change"] == 0 else "—"
    arrow = "▲" if k["change"] > 0 else "▼"
    size = f"{abs(k['change']):.1f} 个百分点 pts" if k["unit"] == "percent" else _value(k, abs(k["change"]))
    verdict = "" if k["good"] is None else (" 改善 better" if k["good"] else " 变差 worse")
    return f"{arrow} {size}{verdict}"

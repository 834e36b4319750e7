"""HTTP API of the operations centre under /api/v1/insight (supervisors and administrators): the KPI
definitions, the figures for a filter with the next level of the drill-down, the cases behind a figure,
and every table as CSV or XLSX."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from wecity.core.errors import PermissionDenied, ValidationFailed
from wecity.core.http import Ctx, request_locale
from wecity.geo.service import city_timezone
from wecity.identity.choices import Role
from wecity.identity.deps import CurrentStaff
from wecity.identity.service import StaffUser
from wecity.insight import exports, queries
from wecity.insight.frame import frame_of
from wecity.insight.kpis import KPIS

router = APIRouter(prefix="/api/v1/insight", tags=["insight"])

Code = Annotated[str | None, Query(max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
# Days a city's figures can be about; outside, the date arithmetic of a period overflows (year 1, year 9999).
FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2099, 12, 31)
Day = Annotated[date | None, Query(ge=FIRST_DAY, le=LAST_DAY)]


def require_leader(user: StaffUser) -> None:
    if not (user.has(Role.SUPERVISOR) or user.has(Role.ADMIN)):
        raise PermissionDenied("for supervisors and administrators", message_zh="仅限督办人员和管理员",
                               code="insight.not_allowed")


def filters_of(conn: Any, now: Any, start: date | None, end: date | None, district: str | None,
               department: str | None, category: str | None, channel: str | None) -> queries.Filters:
    """The filter a request asks for: the last 30 days unless it says; a period of at most a year."""
    default = queries.default_filters(conn, now)
    f = queries.Filters(start or default.start, end or default.end, district or None, department or None,
                        category or None, channel or None)
    if f.end < f.start:
        raise ValidationFailed("the period ends before it starts", message_zh="统计期的结束日期早于开始日期",
                               code="insight.period")
    if f.days > queries.MAX_DAYS:
        raise ValidationFailed(f"a period of at most {queries.MAX_DAYS} days", code="insight.period",
                               message_zh=f"统计期最长 {queries.MAX_DAYS} 天")
    if f.channel and f.channel not in queries.CHANNELS:
        raise ValidationFailed(f"channel must be one of {', '.join(queries.CHANNELS)}", code="insight.channel",
                               message_zh=f"渠道须为 {'、'.join(queries.CHANNELS)} 之一")
    return f


@router.get("/kpis", summary="Every KPI's definition: the counters summed, over which, and in words (zh, en)")
async def kpi_definitions(user: CurrentStaff) -> dict[str, Any]:
    require_leader(user)
    return {"kpis": [{"code": k.code, "name_zh": k.name_zh, "name_en": k.name_en, "unit": k.unit,
                      "numerator": list(k.numerator), "denominator": list(k.denominator), "better": k.better,
                      "definition_zh": k.definition_zh, "definition_en": k.definition_en} for k in KPIS]}


@router.get("/figures", summary="The KPIs for a period and filter, each with the previous period's; open and "
            "overdue cases now; the next level of the drill-down (districts, departments, categories)")
async def get_figures(ctx: Ctx, user: CurrentStaff, start: Annotated[Day, Query(alias="from")] = None,
                      end: Annotated[Day, Query(alias="to")] = None, district: Code = None,
                      department: Code = None, category: Code = None, channel: Code = None) -> dict[str, Any]:
    require_leader(user)
    now = ctx.clock.now()

    def run(conn: Any) -> dict[str, Any]:
        f = filters_of(conn, now, start, end, district, department, category, channel)
        return queries.figures(conn, f, now, frame_of(ctx).current(conn))

    return await ctx.db.read(run)


@router.get("/cases", summary="The cases behind a figure: received in the period, open now or overdue now")
async def get_cases(ctx: Ctx, user: CurrentStaff, which: Annotated[str, Query(pattern="^(received|open|overdue)$")]
                    = "received", start: Annotated[Day, Query(alias="from")] = None,
                    end: Annotated[Day, Query(alias="to")] = None, district: Code = None, department: Code = None,
                    category: Code = None, channel: Code = None) -> dict[str, Any]:
    require_leader(user)
    now = ctx.clock.now()

    def run(conn: Any) -> dict[str, Any]:
        f = filters_of(conn, now, start, end, district, department, category, channel)
        return {"which": which, "cases": queries.case_list(conn, f, now, which=which), "limit": queries.LIST_LIMIT}

    return await ctx.db.read(run)


@router.get("/export.{extension}", summary="A table (kpis, breakdown or cases) as CSV or XLSX, in the reader's "
            "language")
async def export(request: Request, ctx: Ctx, user: CurrentStaff, extension: str,
                 table: Annotated[str, Query(pattern="^(kpis|breakdown|cases)$")] = "breakdown",
                 which: Annotated[str, Query(pattern="^(received|open|overdue)$")] = "received",
                 start: Annotated[Day, Query(alias="from")] = None, end: Annotated[Day, Query(alias="to")] = None,
                 district: Code = None, department: Code = None, category: Code = None,
                 channel: Code = None) -> Response:
    require_leader(user)
    if extension not in ("csv", "xlsx"):
        raise ValidationFailed("export as csv or xlsx", message_zh="导出格式须为 csv 或 xlsx", code="insight.format")
    return await export_response(ctx, request_locale(request), extension, table, which,
                                 (start, end, district, department, category, channel))


async def export_response(ctx: Any, locale: str, extension: str, table: str, which: str,
                          asked: tuple[Any, ...]) -> Response:
    """The file for a table under a filter (the API's and the page's export links)."""
    now = ctx.clock.now()

    def run(conn: Any) -> tuple[queries.Filters, list[dict[str, Any]]]:
        f = filters_of(conn, now, *asked)
        if table == "cases":
            return f, queries.case_list(conn, f, now, which=which, limit=queries.EXPORT_LIMIT + 1)
        frame = frame_of(ctx).current(conn)
        if table == "kpis":
            return f, queries.figures(conn, f, now, frame)["kpis"]
        level = f.level if f.level != "cases" else "category"
        return f, queries.breakdown(conn, f, now, level, frame)

    f, data = await ctx.db.read(run)
    cut = table == "cases" and len(data) > queries.EXPORT_LIMIT  # one row more was asked for, to know
    data = data[:queries.EXPORT_LIMIT] if cut else data
    header, rows = exports.rows_of(table, data, locale, await ctx.db.read(city_timezone))
    if cut:
        rows.append([f"仅导出前 {queries.EXPORT_LIMIT:,} 件，请缩小筛选范围" if locale == "zh_CN" else
                     f"Only the first {queries.EXPORT_LIMIT:,} cases: narrow the filter for the rest",
                     *[None] * (len(header) - 1)])
    name = f"wecity-{table}-{f.start.isoformat()}-{f.end.isoformat()}"
    if extension == "csv":
        return Response(exports.to_csv(header, rows), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})
    return Response(exports.to_xlsx(table, header, rows),
                    media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                    headers={"Content-Disposition": f'attachment; filename="{name}.xlsx"'})


@router.get("/briefing.pdf", summary="The daily briefing (PDF): a day's KPIs against the day before, what is overdue "
            "now, the week's hot spots; yesterday unless `day` says")
async def get_briefing(ctx: Ctx, user: CurrentStaff, day: Day = None) -> Response:
    require_leader(user)
    return await briefing_response(ctx, day)


async def briefing_response(ctx: Any, day: date | None) -> Response:
    """The briefing PDF of `day` (the city's yesterday by default), for the API and the page's link."""
    from datetime import timedelta

    from wecity.geo.service import get_jurisdiction
    from wecity.insight.briefing import briefing_data, render

    now = ctx.clock.now()

    def run(conn: Any) -> tuple[dict[str, Any], str]:
        wanted = day or (now.astimezone(city_timezone(conn)).date() - timedelta(days=1))
        city = get_jurisdiction(conn)
        return briefing_data(conn, wanted, now, frame_of(ctx).current(conn)), city.name_zh if city else "WeCity"

    data, city = await ctx.db.read(run)
    body = render(data, city=city, generated=now)
    return Response(body, media_type="application/pdf", headers={
        "Content-Disposition": f'inline; filename="wecity-briefing-{data["day"].isoformat()}.pdf"'})


@router.get("/loops", summary="The other loops' figures for the period (and department): service applications "
            "(按时办结率, 好差评, 整改), data sharing (answered on time), enterprise policies (免申即享), sensors")
async def get_loops(ctx: Ctx, user: CurrentStaff, start: Annotated[Day, Query(alias="from")] = None,
                    end: Annotated[Day, Query(alias="to")] = None, department: Code = None) -> dict[str, Any]:
    from wecity.insight.loops import loop_figures

    require_leader(user)
    now = ctx.clock.now()

    def run(conn: Any) -> dict[str, Any]:
        f = filters_of(conn, now, start, end, None, department, None, None)
        return {"from": f.start.isoformat(), "to": f.end.isoformat(), "department": f.department,
                "loops": loop_figures(conn, f, now)}

    return await ctx.db.read(run)

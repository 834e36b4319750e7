"""NGSI-LD over HTTP: tenants, content negotiation, @context from Link header or body, ProblemDetails."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import quote

import orjson
import sqlalchemy as sa
from fastapi import Request
from fastapi.responses import Response

from wecity.context.env import NAMED_DEPTH, Env
from wecity.context.errors import (
    PROBLEMS,
    bad_request_data,
    invalid_request,
    not_acceptable,
    too_many_results,
    unsupported_media_type,
)
from wecity.context.ldcontext import CORE_URL, ContextStore, TermMap, link_header, parse_link_header
from wecity.context.models import contexts as contexts_table
from wecity.context.models import registrations, subscriptions
from wecity.context.render import View
from wecity.core.context import AppContext
from wecity.core.errors import WeCityError
from wecity.core.http import request_locale
from wecity.core.jsontext import MAX_DEPTH, BadJson, parse_json

ERRORS = "https://uri.etsi.org/ngsi-ld/errors/"
_TENANT = re.compile(r"^[A-Za-z0-9_\-.:]{1,64}$")
# A wrong HTTP method has no ETSI type of its own: the request itself is wrong, InvalidRequest.
# Nor does a body over the size limit (413).
_BY_STATUS = {400: "BadRequestData", 404: "ResourceNotFound", 405: "InvalidRequest", 409: "AlreadyExists",
              401: "InvalidRequest", 403: "InvalidRequest", 413: "InvalidRequest", 422: "OperationNotSupported",
              429: "InvalidRequest"}


def problem(exc: WeCityError, locale: str = "en") -> tuple[dict[str, Any], int]:
    """The ProblemDetails body and HTTP status for a platform error."""
    kind, status = PROBLEMS.get(exc.code, (None, exc.status))
    if kind is None:
        kind = _BY_STATUS.get(exc.status, "InternalError")
    body = {"type": ERRORS + kind, "title": exc.localized(locale), "status": status, "detail": exc.message}
    if exc.details:
        body["details"] = exc.details
    return body, status


def render_problem(request: Request, exc: WeCityError) -> Response:
    """The error renderer for /ngsi-ld: ProblemDetails with the ETSI error type URIs."""
    body, status = problem(exc, request_locale(request))
    headers = {"WWW-Authenticate": 'Bearer realm="ngsi-ld"'} if status == 401 else None
    return Response(json.dumps(body, ensure_ascii=False), status_code=status, media_type="application/json",
                    headers=headers)


def tenant_of(request: Request) -> str:
    value = request.headers.get("ngsild-tenant")
    if value is None or value == "":
        return ""
    if not _TENANT.match(value):
        raise bad_request_data(f"invalid NGSILD-Tenant {value!r}", f"NGSILD-Tenant 无效：{value!r}")
    return value


def store_of(ctx: AppContext) -> ContextStore:
    return ctx.services["ngsild_contexts"]  # type: ignore[no-any-return]


def env_of(request: Request, ctx: AppContext) -> Env:
    return Env(tenant_of(request), ctx.clock.now(), store_of(ctx), ctx.registry.events, ctx.registry.owned_entities)


async def read_json(request: Request, *, allow_ld: bool = True) -> tuple[Any, str]:
    """The parsed body and its media type; 415 for other media types, 400 for malformed JSON."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media == "application/merge-patch+json" and request.method == "PATCH":
        media = "application/json"  # a PATCH may say what it is (6.3.4); read as JSON with a Link header
    if media not in ("application/json", "application/ld+json") or (media == "application/ld+json" and not allow_ld):
        raise unsupported_media_type(f"unsupported Content-Type {media or '(none)'!r}",
                                     f"不支持的 Content-Type：{media or '（无）'}")
    raw = await request.body()
    try:
        return parse_json(raw, strict=True), media
    except BadJson as exc:
        if exc.too_deep:
            raise invalid_request(f"the body nests deeper than {MAX_DEPTH} levels",
                                  f"请求体嵌套超过 {MAX_DEPTH} 层") from exc
        raise invalid_request("the body is not valid JSON", "请求体不是有效的 JSON") from exc


async def resolve(ctx: AppContext, context: Any) -> TermMap:
    """The term map for `context`; fetching a remote context (once) happens off the event loop."""
    store = store_of(ctx)
    if context is None or context == CORE_URL:
        return store.core
    terms = store.cached(context if isinstance(context, str) else json.dumps(context, sort_keys=True))
    if terms is None:
        terms = await asyncio.to_thread(store.term_map, context)
        fetched = store.take_fetched()
        if fetched:
            await ctx.db.write(_keep_fetched, fetched, ctx.clock.now())
    # Each request that used a kept @context counts once for it (numberOfHits of /jsonldContexts).
    for item in context if isinstance(context, list) else [context]:
        if isinstance(item, str):
            store.hit(item, ctx.clock.now)
    return terms


def _keep_fetched(conn: sa.Connection, fetched: list[tuple[str, Any]], now: Any) -> None:
    added = False
    for url, doc in fetched:
        exists = conn.execute(sa.select(contexts_table.c.pk).where(contexts_table.c.url == url)).first()
        if exists is None:
            conn.execute(contexts_table.insert().values(context_id=uuid.uuid4().hex, url=url, kind="Cached",
                                                        body=doc, created_at=now, times_used=0))
            added = True
    if added:
        forget_unused_cached(conn)


# Remote @contexts the database keeps (kind Cached). Past this many, the least recently used that no
# subscription or registration names are forgotten down to nine tenths of it, so callers naming ever new
# URLs cannot fill the database; a forgotten one is fetched again when next named.
MAX_CACHED_CONTEXTS = 1000


def forget_unused_cached(conn: sa.Connection) -> int:
    """Delete the least recently used cached @contexts past MAX_CACHED_CONTEXTS (down to nine tenths of it),
    keeping every one a subscription or registration names: matching inside a write never fetches
    (`Env.subscription_terms`), so those must stay kept. How many were deleted. "Used" is what the database
    knows: uses counted in memory reach it when /jsonldContexts details are read and when the broker stops."""
    t, most = contexts_table, MAX_CACHED_CONTEXTS
    cached = conn.execute(sa.select(sa.func.count()).select_from(t).where(t.c.kind == "Cached")).scalar_one()
    if cached <= most:
        return 0
    named = _named_by_subscriptions(conn)
    # Oldest use first; never used ones by when they were fetched. The rows are about `most`: read at once.
    order = sa.func.coalesce(t.c.last_used, t.c.created_at)
    surplus, gone = cached - most * 9 // 10, list[int]()
    rows = conn.execute(sa.select(t.c.pk, t.c.url).where(t.c.kind == "Cached").order_by(order, t.c.pk)).all()
    for pk, url in rows:
        if len(gone) >= surplus:
            break
        if url not in named:
            gone.append(pk)
    for start in range(0, len(gone), 500):
        conn.execute(t.delete().where(t.c.pk.in_(gone[start:start + 500])))
    return len(gone)


def _named_by_subscriptions(conn: sa.Connection) -> set[str]:
    """Every URL a subscription's or a registration's @context (or notifications' jsonldContext) names, and
    every URL a hosted or implicitly created @context names."""
    names: set[str] = set()

    def collect(value: Any) -> None:
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str):
                names.add(item)

    for context, body in conn.execute(sa.select(subscriptions.c.context, subscriptions.c.body)):
        collect(context)
        collect((body or {}).get("jsonldContext"))
    for (context,) in conn.execute(sa.select(registrations.c.context)):
        collect(context)
    # and what hosted and implicitly created @contexts name: a subscription may name one of those
    for (body,) in conn.execute(sa.select(contexts_table.c.body).where(contexts_table.c.kind != "Cached")):
        collect((body or {}).get("@context") if isinstance(body, dict) else None)
    # and what the cached ones so named name in turn (Smart Data Models' @contexts name others), a few deep
    cached = dict(conn.execute(sa.select(contexts_table.c.url, contexts_table.c.body)
                               .where(contexts_table.c.kind == "Cached")).all())
    frontier = set(names)
    for _ in range(NAMED_DEPTH):
        before = set(names)
        for url in frontier:
            body = cached.get(url)
            collect(body.get("@context") if isinstance(body, dict) else None)
        frontier = names - before
        if not frontier:
            break
    return names


@dataclass
class Incoming:
    """A write request's body, and the @context it is to be read with."""

    body: Any
    context: Any
    terms: TermMap


async def incoming(request: Request, ctx: AppContext, *, body_context: bool = True,
                   want_object: bool = False) -> Incoming:
    """The body and @context of a write: Link header with application/json, or `@context` in the body
    with application/ld+json (not both). With `want_object`, a body that is not a JSON object is an
    InvalidRequest."""
    body, media = await read_json(request)
    if want_object and not isinstance(body, dict):
        raise invalid_request("the body must be a JSON object", "请求体必须是 JSON 对象")
    link = parse_link_header(request.headers.get("link"))
    context: Any = None
    if media == "application/ld+json":
        if link is not None:
            raise bad_request_data("a Link header is not allowed with application/ld+json",
                                   "使用 application/ld+json 时不允许 Link 头")
        contexts = [b.get("@context") for b in (body if isinstance(body, list) else [body]) if isinstance(b, dict)]
        if body_context and (not contexts or any(c is None for c in contexts)):
            raise bad_request_data("application/ld+json needs @context in the body",
                                   "application/ld+json 请求体中需要 @context")
        context = contexts[0] if contexts else None
    else:
        for item in body if isinstance(body, list) else [body]:
            if isinstance(item, dict) and "@context" in item:
                raise bad_request_data("@context in the body needs Content-Type application/ld+json",
                                       "请求体中的 @context 需要 Content-Type 为 application/ld+json")
        context = link
    return Incoming(body, context, await resolve(ctx, context))


async def outgoing_terms(request: Request, ctx: AppContext) -> tuple[Any, TermMap]:
    link = parse_link_header(request.headers.get("link"))
    return link, await resolve(ctx, link)


# What a response may be (clause 6.3.4): JSON or JSON-LD, and for entities also GeoJSON (clause 4.5.16).
JSON_LD = ("application/json", "application/ld+json")
GEOJSON = (*JSON_LD, "application/geo+json")


def accepts(request: Request, offered: tuple[str, ...] = JSON_LD) -> str:
    """The media type of `offered` the Accept header prefers; NotAcceptable when it takes none of them."""
    accept = request.headers.get("accept", "")
    choice = negotiate(accept, offered)
    if choice is None:
        raise not_acceptable(f"cannot answer in {accept!r}", f"无法以 {accept!r} 格式应答")
    return choice


# The representations in the order of clause 6.3.4: when an Accept header takes several equally, the
# first of this list is chosen.
_LIST_ORDER = ("application/json", "application/ld+json", "application/geo+json")


@lru_cache(maxsize=512)
def negotiate(accept: str, offered: tuple[str, ...] = JSON_LD) -> str | None:
    """The representation of `offered` an Accept header selects (6.3.4), or None when it takes none.

    Each representation weighs what the most specific media range matching it says (RFC 9110 5.3.2:
    exact type, then type/*, then */*), so "application/json;q=0, */*" refuses JSON however the
    wildcard reads; a weight of 0 refuses; equal weights go to the first of the 6.3.4 list. A weight
    that is not a number in [0, 1] is no weight at all (the default 1). No Accept is "*/*"."""
    ranges: list[tuple[str, float]] = []
    for part in (accept or "*/*").split(","):
        bits = part.split(";")
        media = bits[0].strip().lower()
        if not media:
            continue
        weight = 1.0
        for bit in bits[1:]:
            name, _, value = bit.partition("=")
            if name.strip().lower() == "q":
                try:
                    given = float(value.strip())
                except ValueError:
                    given = 1.0
                weight = given if 0.0 <= given <= 1.0 else 1.0
        ranges.append((media, weight))
    best, best_weight = None, 0.0
    for choice in _LIST_ORDER:
        if choice in offered:
            weight = _weight(choice, ranges)
            if weight > best_weight:
                best, best_weight = choice, weight
    return best


def _weight(media: str, ranges: list[tuple[str, float]]) -> float:
    family = media.split("/", 1)[0] + "/*"
    weight, specificity = 0.0, 0
    for given, q in ranges:
        rank = 3 if given == media else 2 if given == family else 1 if given == "*/*" else 0
        if rank > specificity:
            weight, specificity = q, rank
    return weight


_FORMS = {"normalized": "normalized", "keyValues": "keyValues", "simplified": "keyValues", "concise": "concise"}
_OPTIONS = frozenset({"keyValues", "simplified", "concise", "normalized", "sysAttrs", "noOverwrite", "replace",
                      "update", "temporalValues", "aggregatedValues"})


def view_of(request: Request, terms: TermMap, attrs: frozenset[str] | None = None) -> View:
    """The representation asked for; `format` wins over a representation in `options` (6.3.7).
    Unknown values are InvalidRequest (6.3.20): the request itself is malformed, not its data."""
    options = set(filter(None, request.query_params.get("options", "").split(",")))
    fmt = request.query_params.get("format")
    unknown = options - _OPTIONS
    if unknown:
        raise invalid_request(f"unknown options {', '.join(sorted(unknown))}",
                              f"未知的 options：{'、'.join(sorted(unknown))}")
    if fmt and fmt not in _FORMS:
        raise invalid_request(f"unknown format {fmt!r}", f"未知的 format：{fmt!r}")
    if fmt:
        form = _FORMS[fmt]
    else:
        form = ("keyValues" if options & {"keyValues", "simplified"} else "concise" if "concise" in options
                else "normalized")
    datasets = split_list(request.query_params.get("datasetId"))
    return View(terms=terms, form=form, sys_attrs="sysAttrs" in options, attrs=attrs,
                lang=request.query_params.get("lang"), datasets=frozenset(datasets) if datasets else None)


def respond(request: Request, data: Any, context: Any, *, status: int = 200,
            headers: dict[str, str] | None = None, geometry_property: str | None = None,
            offered: tuple[str, ...] = JSON_LD) -> Response:
    """JSON with the @context in a Link header, or inside the body for application/ld+json and, where
    entities are `offered` as GEOJSON, application/geo+json (there they become GeoJSON Features, 4.5.16)."""
    media = accepts(request, offered)
    if geometry_property is None:
        geometry_property = request.query_params.get("geometryProperty")
    if geometry_property and media != "application/geo+json":
        raise bad_request_data("geometryProperty needs Accept: application/geo+json",
                               "geometryProperty 需要 Accept: application/geo+json")
    headers = dict(headers or {})
    links = [headers.pop("Link")] if "Link" in headers else []  # e.g. pagination links, kept after the @context one
    url = context if isinstance(context, str) else CORE_URL
    if isinstance(context, list) and len(context) == 1 and isinstance(context[0], str):
        url = context[0]
    ctx_value = context if context is not None else CORE_URL
    if media == "application/ld+json":
        if isinstance(data, list):
            data = [dict(d, **{"@context": ctx_value}) if isinstance(d, dict) else d for d in data]
        elif isinstance(data, dict):
            data = dict(data, **{"@context": ctx_value})
    else:
        headers["Link"] = link_header(url)
        if media == "application/geo+json" and isinstance(data, list | dict):
            data = _geojson(data, geometry_property or "location")
            # The @context is in the body too, unless the client prefers a plain JSON body (6.3.6).
            if preferences(request.headers.get("prefer")).get("body") != "json":
                data = dict(data, **{"@context": ctx_value})
    if links:
        headers["Link"] = ", ".join([headers["Link"], *links] if "Link" in headers else links)
    return Response(dumps(data), status_code=status, media_type=media, headers=headers)


def dumps(data: Any) -> bytes | str:
    """A response body: orjson (a temporal aggregation of a week by hour is a thousand values), the
    standard encoder for what orjson refuses (integers beyond 64 bits)."""
    try:
        return orjson.dumps(data)
    except TypeError:
        return json.dumps(data, ensure_ascii=False)


def _geometry(attr: Any) -> Any:
    """The GeoJSON geometry of a rendered attribute (its default instance when it has several), or None."""
    if isinstance(attr, list):
        attr = next((a for a in attr if isinstance(a, dict) and "datasetId" not in a), None)
    if isinstance(attr, dict) and isinstance(attr.get("dataset"), dict):
        attr = attr["dataset"].get("@none")
    if isinstance(attr, dict) and "value" in attr and "coordinates" not in attr:
        attr = attr["value"]
    if isinstance(attr, dict) and isinstance(attr.get("type"), str) and (
            "coordinates" in attr or attr.get("type") == "GeometryCollection"):
        return attr
    return None


def _feature(entity: dict[str, Any], geometry_property: str) -> dict[str, Any]:
    return {"id": entity.get("id"), "type": "Feature", "geometry": _geometry(entity.get(geometry_property)),
            "properties": {k: v for k, v in entity.items() if k not in ("id", "@context")}}


def _geojson(data: Any, geometry_property: str) -> dict[str, Any]:
    if isinstance(data, list):
        return {"type": "FeatureCollection", "features": [_feature(e, geometry_property) for e in data]}
    return _feature(data, geometry_property)


def created(location: str) -> Response:
    """201 with the new resource's Location. On the wire the server writes header names lower-case, as
    HTTP allows (names are case-insensitive, RFC 9110 5.1)."""
    return Response(status_code=201, headers={"Location": location})


def no_content(headers: dict[str, str] | None = None) -> Response:
    return Response(status_code=204, headers=headers)


MAX_LIMIT = 1000  # the most results in a page
MAX_OFFSET = 2**63 - 1  # the most results a database can skip (a signed 64-bit integer)


def paging(request: Request, *, default: int = 20, maximum: int = MAX_LIMIT) -> tuple[int, int, bool]:
    """limit, offset and count=true from the query string."""
    params = request.query_params
    try:
        limit = int(params.get("limit", default))
        offset = int(params.get("offset", 0))
    except ValueError as exc:
        raise bad_request_data("limit and offset must be integers", "limit 和 offset 必须是整数") from exc
    if limit < 0 or offset < 0:
        raise bad_request_data("limit and offset must not be negative", "limit 和 offset 不能为负数")
    if offset > MAX_OFFSET:
        raise bad_request_data(f"offset must be at most {MAX_OFFSET}", f"offset 不能超过 {MAX_OFFSET}")
    if limit > maximum:
        raise too_many_results(f"limit {limit} exceeds the maximum {maximum}",
                               f"limit {limit} 超过上限 {maximum}")
    count = params.get("count", "false").lower()
    if count not in ("true", "false"):
        raise bad_request_data("count must be true or false", "count 必须是 true 或 false")
    return limit, offset, count == "true"


def page_links(request: Request, *, limit: int, offset: int, more: bool) -> list[str]:
    """The rel="prev" / rel="next" links of a paged answer (clause 4.12): the same request with the
    offset moved back or forward by a page; none at the respective end of the result set."""
    if limit <= 0:
        return []
    params = [(k, v) for k, v in request.query_params.multi_items() if k != "offset"]

    def link(new_offset: int, rel: str) -> str:
        items = sorted([*params, ("offset", str(new_offset))])
        query = "&".join(f"{quote(k, safe='')}={quote(v, safe=_QUERY_SAFE)}" for k, v in items)
        return f'<{request.url.path.rstrip("/")}?{query}>; rel="{rel}"; type="application/json"'

    links = []
    if offset > 0:
        links.append(link(max(0, offset - limit), "prev"))
    if more:
        links.append(link(offset + limit, "next"))
    return links


_QUERY_SAFE = ":/.*,;|$!'()@~[]"  # left as they are in a link's query string; the rest is percent-encoded


def split_list(value: str | None) -> list[str] | None:
    if value is None:
        return None
    items = [v.strip() for v in re.split(r"[,|]", value) if v.strip()]
    return items or None


def preferences(header: str | None) -> dict[str, str | None]:
    """The preferences of a Prefer header (RFC 7240): names lower-cased, values unquoted, each
    preference's own parameters (after ";") set aside; several headers arrive joined by commas."""
    found: dict[str, str | None] = {}
    if not header:
        return found
    for item in _split_outside_quotes(header, ","):
        head = _split_outside_quotes(item, ";")[0].strip()
        if not head:
            continue
        name, eq, value = head.partition("=")
        name = name.strip().lower()
        text: str | None = value.strip() if eq else None
        if text is not None and len(text) >= 2 and text[0] == text[-1] == '"':
            text = re.sub(r"\\(.)", r"\1", text[1:-1])
        found.setdefault(name, text)
    return found


def _split_outside_quotes(text: str, sep: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for c in text:
        if escaped:
            escaped = False
        elif c == "\\" and quoted:
            escaped = True
        elif c == '"':
            quoted = not quoted
        elif c == sep and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(c)
    parts.append("".join(current))
    return parts


def preferred_version(request: Request) -> str | None:
    """The NGSI-LD version a client prefers (`Prefer: ngsi-ld=<version>`, 6.3.6), if it names one."""
    version = preferences(request.headers.get("prefer")).get("ngsi-ld")
    # Numbers of a few digits: a longer one names no version (and would not even convert to an integer).
    return version if version and re.fullmatch(r"\d{1,9}(\.\d{1,9}){0,9}", version) else None


# Attribute types younger than some versions of the API (4.3.6.8): a client preferring an older version
# gets them in the form that version knew.
_INTRODUCED = {"VocabProperty": ((1, 8), "vocab"), "JsonProperty": ((1, 8), "json"),
               "ListProperty": ((1, 8), "valueList"), "LanguageProperty": ((1, 4), "languageMap")}


def _older_form(attr: Any, version: tuple[int, ...]) -> tuple[Any, bool]:
    if isinstance(attr, list):
        parts = [_older_form(a, version) for a in attr]
        return [p for p, _ in parts], any(c for _, c in parts)
    if not isinstance(attr, dict):
        return attr, False
    found = _INTRODUCED.get(attr.get("type", ""))
    if found is None or version >= found[0] or found[1] not in attr:
        return attr, False
    out = {k: v for k, v in attr.items() if k != found[1]}
    out["type"] = "Property"
    out["value"] = attr[found[1]]
    return out, True


def in_preferred_version(request: Request, data: Any) -> tuple[Any, int, dict[str, str]]:
    """Entities as the NGSI-LD version the client prefers knows them (Prefer: ngsi-ld=<version>):
    the body, 203 when it had to be altered (else 200), and Preference-Applied."""
    text = preferred_version(request)
    if text is None:
        return data, 200, {}
    version = tuple(int(p) for p in text.split("."))
    altered = False
    entities = data if isinstance(data, list) else [data]
    out = []
    for entity in entities:
        if not isinstance(entity, dict):
            out.append(entity)
            continue
        shaped = {}
        for key, value in entity.items():
            shaped[key], changed = _older_form(value, version) if key not in ("id", "type", "@context") \
                else (value, False)
            altered = altered or changed
        out.append(shaped)
    return (out if isinstance(data, list) else out[0]), (203 if altered else 200), \
        {"Preference-Applied": f"ngsi-ld={text}"}

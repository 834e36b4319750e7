"""Requests forwarded to context sources: built as clause 4.3.6.5 and 6.3.18 say (the registration's
`contextSourceInfo` as headers, its `tenant`, `Via` for loop detection, the @context the way the source
asked for it), sent concurrently through the platform's outbound policy (`wecity.core.outbound`: never
an internal address unless the operator allows it, a total timeout, a bounded answer), and the answers
classified with the NGSILD-Warning codes of clause 6.3.17.

Also the registrations the broker knows, kept in memory per tenant (`RegistrationCache`): a request that
matches none costs one dictionary look-up."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from wecity.context.federation import CALLER_CREDENTIALS, REQUEST_VALUE, Registration, parse_registration
from wecity.context.ldcontext import TermMap, link_header
from wecity.core import outbound
from wecity.core.outbound import OutboundPolicy

FORWARD_TIMEOUT = 5.0  # seconds a context source has to answer (at most the outbound policy's timeout)
# contextSourceInfo keys that say how to talk to the source rather than being headers (4.3.6.5).
_STEERING = {"jsonldcontext", "contenttype", "accept"}
# Headers a registration may not set: the tenant is the registration's own member, the rest describe
# the connection or the message (4.3.6.5, "binding-specific interaction information shall be ignored").
_NOT_FROM_REGISTRATION = {"ngsild-tenant", "via", "content-length", "content-type", "host", "link", "connection",
                          "transfer-encoding", "te", "upgrade", "keep-alive", "proxy-authorization", "trailer",
                          "accept"}

# NGSILD-Warning codes (Table 6.3.17-1).
UNREACHABLE = 199  # the source did not answer (in time)
INVALID_PAYLOAD = 111  # the source answered with something the broker cannot use
ERROR_ANSWER = 299  # the source answered with an error


@dataclass(frozen=True, slots=True)
class Answer:
    registration: Registration
    status: int | None  # None: not reached
    body: Any = None
    warning: int | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300 and self.warning is None

    def warning_text(self) -> str | None:
        if self.warning is None:
            return None
        what = {UNREACHABLE: "did not answer", INVALID_PAYLOAD: "answered with an invalid payload",
                ERROR_ANSWER: f"answered {self.status}"}[self.warning]
        return f'{self.warning} {self.registration.id} "context source {what}"'


def warning_header(answers: Iterable[Answer]) -> dict[str, str]:
    texts = [t for t in (a.warning_text() for a in answers) if t]
    return {"NGSILD-Warning": ", ".join(texts)} if texts else {}


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One request to one context source: the path under its endpoint's `/ngsi-ld/v1`."""

    registration: Registration
    method: str
    path: str
    params: tuple[tuple[str, str], ...] = ()
    body: Any = None  # JSON, compacted with the context the request is sent with
    expect_json: bool = False


class Forwarder:
    """Sends `Outgoing` requests for one incoming request: its headers, its @context, who we are."""

    def __init__(self, client: httpx.AsyncClient, policy: OutboundPolicy, identity: str, *, max_bytes: int,
                 timeout: float = FORWARD_TIMEOUT) -> None:
        self.client, self.policy, self.identity = client, policy, identity
        self.max_bytes, self.timeout = max_bytes, timeout

    def via(self, incoming: Mapping[str, str]) -> str:
        """The Via header to send on: what the request carried, then this broker (RFC 9110 7.6.3)."""
        before = incoming.get("via")
        mine = f"1.1 {self.identity}"
        return f"{before}, {mine}" if before else mine

    def has_looped(self, incoming: Mapping[str, str]) -> bool:
        """Whether this broker already forwarded the request being served (its identity is in Via)."""
        via = incoming.get("via") or ""
        return any(hop.strip().split(" ", 1)[-1].strip() == self.identity for hop in via.split(","))

    def headers_for(self, reg: Registration, incoming: Mapping[str, str], context: Any,
                    has_body: bool) -> tuple[dict[str, str], Any]:
        """The headers of a request to `reg` and the @context to put in its body (None: in a Link)."""
        steering = {k.lower(): v for k, v in reg.context_source_info if k.lower() in _STEERING}
        context = steering.get("jsonldcontext", context)
        headers = {"Via": self.via(incoming), "Accept": steering.get("accept", "application/json")}
        inline = None
        url = context if isinstance(context, str) else \
            context[0] if isinstance(context, list) and len(context) == 1 and isinstance(context[0], str) else None
        # a @context that is no single URL cannot go in a Link header: it travels in the body (6.3.5)
        in_body = has_body and context is not None and url is None
        if has_body and (in_body or steering.get("contenttype", "").startswith("application/ld+json")):
            headers["Content-Type"] = "application/ld+json"
            inline = context
        else:
            if has_body:
                headers["Content-Type"] = "application/json"
            if url is not None:
                headers["Link"] = link_header(url)
        if reg.tenant:
            headers["NGSILD-Tenant"] = reg.tenant
        for key, value in reg.context_source_info:
            low = key.lower()
            if low in _STEERING or low in _NOT_FROM_REGISTRATION:
                continue
            if value == REQUEST_VALUE:
                if low in CALLER_CREDENTIALS:
                    continue  # refused at registration; never copied, whatever is stored
                copied = incoming.get(low)
                if copied is not None:
                    headers[key] = copied
            else:
                headers[key] = value
        return headers, inline

    async def send(self, out: Outgoing, incoming: Mapping[str, str], context: Any) -> Answer:
        reg = out.registration
        headers, inline = self.headers_for(reg, incoming, context, out.body is not None)
        content = None
        if out.body is not None:
            body = out.body
            if inline is not None:
                body = [dict(b, **{"@context": inline}) for b in body] if isinstance(body, list) \
                    else dict(body, **{"@context": inline})
            content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()  # compact on the wire
        params: list[tuple[str, str | int | float | bool | None]] = list(out.params)
        if reg.local_only and ("local", "true") not in params:
            params.append(("local", "true"))
        try:
            status, _, raw = await outbound.request(self.client, self.policy, out.method, reg.endpoint + "/ngsi-ld/v1" + out.path,
                                                    params=params or None, content=content, headers=headers,
                                                    max_bytes=self.max_bytes, timeout=self.timeout)
        except outbound.OutboundTooLarge:
            return Answer(reg, 200, warning=INVALID_PAYLOAD)
        except outbound.OutboundFailed:
            return Answer(reg, None, warning=UNREACHABLE)
        if status == 404:
            return Answer(reg, status, _json_or_none(raw))  # nothing there: not abnormal (6.3.17)
        if not 200 <= status < 300:
            return Answer(reg, status, _json_or_none(raw), warning=ERROR_ANSWER)
        if out.expect_json:
            try:
                return Answer(reg, status, json.loads(raw))
            except ValueError:
                return Answer(reg, status, warning=INVALID_PAYLOAD)
        return Answer(reg, status, _json_or_none(raw))

    async def send_all(self, outs: list[Outgoing], incoming: Mapping[str, str], context: Any) -> list[Answer]:
        """Every request at once; the answers in the same order."""
        if not outs:
            return []
        return list(await asyncio.gather(*(self.send(o, incoming, context) for o in outs)))


def _json_or_none(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


def new_identity() -> str:
    """A name for this broker in Via headers, different for every process: two brokers that forward to
    each other tell their own hops apart."""
    return f"wecity-{uuid.uuid4().hex[:12]}"


# -- the registrations, in memory ----------------------------------------------------------------------

# One stored registration: (tenant, spec JSON, the term map of its @context or None if expanded).
RegistrationRow = tuple[str, dict[str, Any], TermMap | None]
Loader = Callable[[], Awaitable[list[RegistrationRow]]]
RELOAD_SECONDS = 2.0  # another process's change is seen within this time


class RegistrationCache:
    """Every active registration by tenant. Changes in this process `invalidate` it at once; changes made
    by another process are seen after RELOAD_SECONDS. Without a loader there are no registrations."""

    def __init__(self, loader: Loader | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.loader, self.clock = loader, clock
        self._by_tenant: dict[str, tuple[Registration, ...]] | None = None
        self._loaded_at = 0.0
        self._lock = asyncio.Lock()

    def invalidate(self) -> None:
        self._by_tenant = None

    async def for_tenant(self, tenant: str) -> tuple[Registration, ...]:
        by_tenant = self._by_tenant
        if by_tenant is None or self.clock() - self._loaded_at > RELOAD_SECONDS:
            by_tenant = await self._reload()
        return by_tenant.get(tenant, ())

    async def _reload(self) -> dict[str, tuple[Registration, ...]]:
        async with self._lock:
            if self._by_tenant is not None and self.clock() - self._loaded_at <= RELOAD_SECONDS:
                return self._by_tenant
            rows = await self.loader() if self.loader is not None else []
            grouped: dict[str, list[Registration]] = {}
            for tenant, doc, terms in rows:
                grouped.setdefault(tenant, []).append(parse_registration(doc, terms))
            self._by_tenant = {t: tuple(regs) for t, regs in grouped.items()}
            self._loaded_at = self.clock()
            return self._by_tenant

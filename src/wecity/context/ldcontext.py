"""JSON-LD @context handling: the bundled core context, user contexts fetched once, cached term maps.

Expanding and compacting every attribute with a JSON-LD processor on each request is slow, so pyld is
used once per distinct @context to build its active context; from that a `TermMap` answers
term -> IRI and IRI -> term with dictionary look-ups, and is kept for as long as the process runs.
"""

from __future__ import annotations

import json
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from importlib import resources
from typing import Any

from pyld import jsonld

from wecity.context.errors import bad_request_data, ld_context_not_available
from wecity.core.errors import DependencyUnavailable, ValidationFailed
from wecity.core.outbound import NotJson

CORE_URL = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"
_CORE_ALIAS = re.compile(r"^https?://uri\.etsi\.org/ngsi-ld/v1/ngsi-ld-core-context(-v1\.\d+)?\.jsonld$")
HOSTED_PATH = "/ngsi-ld/v1/jsonldContexts/"
NGSI_LD = "https://uri.etsi.org/ngsi-ld/"
DEFAULT_VOCAB = "https://uri.etsi.org/ngsi-ld/default-context/"
LINK_REL = "http://www.w3.org/ns/json-ld#context"

# Fetches a remote context document (a URL) and returns its JSON; raises on any failure.
Fetcher = Callable[[str], Any]


def is_core_url(url: str) -> bool:
    return bool(_CORE_ALIAS.match(url))


def _load_core() -> dict[str, Any]:
    text = resources.files("wecity.context").joinpath("data/ngsi-ld-core-context-v1.8.jsonld").read_text("utf-8")
    return json.loads(text)  # type: ignore[no-any-return]


CORE_DOCUMENT = _load_core()


class TermMap:
    """Term <-> IRI for one active context, memoised."""

    def __init__(self, active: dict[str, Any]) -> None:
        self._terms: dict[str, str] = {}
        self._prefixes: dict[str, str] = {}
        for term, definition in active.get("mappings", {}).items():
            if not definition or "@id" not in definition:
                continue
            iri = definition["@id"]
            if not isinstance(iri, str) or iri.startswith("@"):
                continue
            self._terms[term] = iri
            if iri.endswith(("/", "#", ":")) or definition.get("_prefix"):
                self._prefixes[term] = iri
        self.vocab: str = active.get("@vocab") or DEFAULT_VOCAB
        reverse: dict[str, str] = {}
        for term, iri in sorted(self._terms.items(), key=lambda kv: (len(kv[0]), kv[0]), reverse=True):
            reverse[iri] = term
        self._reverse = reverse
        self._expanded: dict[str, str] = {}
        self._compacted: dict[str, str] = {}

    def expand(self, term: str) -> str:
        found = self._expanded.get(term)
        if found is not None:
            return found
        if term in self._terms:
            iri = self._terms[term]
        elif ":" in term:
            prefix, _, suffix = term.partition(":")
            if prefix in self._prefixes and not suffix.startswith("//"):
                iri = self._prefixes[prefix] + suffix
            else:
                iri = term  # already an absolute IRI
        else:
            iri = self.vocab + term
        self._expanded[term] = iri
        return iri

    def compact(self, iri: str) -> str:
        found = self._compacted.get(iri)
        if found is not None:
            return found
        term = self._reverse.get(iri)
        if term is None:
            suffix = iri[len(self.vocab):]
            # Relative to @vocab only when that name does not stand for another IRI in this context.
            if iri.startswith(self.vocab) and ":" not in suffix and suffix not in self._terms:
                term = suffix
            else:
                term = self._compact_iri(iri)
        self._compacted[iri] = term
        return term


    def _compact_iri(self, iri: str) -> str:
        """`prefix:suffix` by the longest prefix the context defines, else the IRI itself."""
        best = ""
        for prefix, base in self._prefixes.items():
            if iri.startswith(base) and len(iri) > len(base) and len(base) > len(self._prefixes.get(best, "")):
                best = prefix
        return f"{best}:{iri[len(self._prefixes[best]):]}" if best else iri


# Term maps kept built (one per distinct @context a request named); one forgotten is built again when asked.
MAX_TERM_MAPS = 1000
# Remote @contexts a process keeps in memory: the least recently used goes first (the database keeps its own
# bounded set, `protocol.MAX_CACHED_CONTEXTS`), so callers naming ever new URLs cannot fill the memory.
MAX_REMOTE_DOCUMENTS = 1000


class ContextStore:
    """Where @context documents come from, and the cache of term maps built from them.

    Core context URLs resolve to the bundled file; contexts hosted by the broker (POST /jsonldContexts)
    and remote ones fetched earlier come from memory (loaded from the database at start); any other URL
    is fetched once with `fetcher` and kept.
    """

    def __init__(self, fetcher: Fetcher | None = None) -> None:
        self.documents: dict[str, Any] = {}
        self.fetcher = fetcher
        self._maps: dict[str, TermMap] = {}
        self._lock = threading.Lock()
        # URLs fetched since the last call of `take_fetched` (the API persists them as cached contexts).
        self._fetched: list[tuple[str, Any]] = []
        # Uses of kept @contexts since the last `take_hits`: key -> (count, when last used).
        self._hits: dict[str, tuple[int, Any]] = {}
        # The remote (fetched or cached) documents among `documents`, least recently used first.
        self._remote: OrderedDict[str, None] = OrderedDict()
        self.core = self._build([CORE_URL])

    # -- documents ------------------------------------------------------------------------------

    def add(self, url: str, document: Any) -> None:
        with self._lock:
            self.documents[url] = document
            self._remember_remote(url)
            self._maps.clear()  # a changed document invalidates every map built from it

    def keep(self, url: str, document: Any) -> None:
        """A document found kept elsewhere (the database) that this process did not have: added, leaving
        the term maps built from the others as they are."""
        with self._lock:
            if url not in self.documents:
                self.documents[url] = document
                self._remember_remote(url)

    def remove(self, url: str) -> None:
        with self._lock:
            self.documents.pop(url, None)
            self._remote.pop(url, None)
            self._maps.clear()

    def _remember_remote(self, url: str) -> None:
        """Count `url` as a remote document just used (under the lock); past the bound the least recently
        used remote document is dropped from memory (a term map built from it stays until it too goes: the
        database, or a fetch, gives the document again)."""
        if HOSTED_PATH in url:
            return
        self._remote[url] = None
        self._remote.move_to_end(url)
        while len(self._remote) > MAX_REMOTE_DOCUMENTS:
            oldest, _ = self._remote.popitem(last=False)
            self.documents.pop(oldest, None)

    def key_of(self, url: str) -> str | None:
        """The key a kept @context is stored under (hosted ones by their path, whatever host a client
        reached the broker by), or None for a URL the broker keeps nothing for."""
        if HOSTED_PATH in url:
            return HOSTED_PATH + url.rsplit("/", 1)[1]
        return url if url in self.documents else None

    def hit(self, url: str, now: Callable[[], Any]) -> None:
        """A request used the @context at `url` (numberOfHits, lastUsage of /jsonldContexts)."""
        key = self.key_of(url)
        if key is not None:
            count = self._hits.get(key, (0, None))[0]
            self._hits[key] = (count + 1, now())
            with self._lock:
                if key in self._remote:
                    self._remote.move_to_end(key)

    def take_hits(self) -> dict[str, tuple[int, Any]]:
        with self._lock:
            hits, self._hits = self._hits, {}
        return hits

    def refetch(self, url: str) -> Any:
        """The document at `url` fetched anew, not yet kept; the errors of a first fetch (blocking)."""
        if self.fetcher is None:
            raise _not_available(url, "no network fetch configured")
        try:
            doc = self.fetcher(url)
        except NotJson:
            raise _invalid(url) from None
        except Exception:
            # One answer whatever went wrong (refused, closed port, timeout, too big): the reason is in the
            # operator's log, not in an answer that would map the network behind the broker.
            raise _not_available(url, "not reachable") from None
        if not isinstance(doc, dict) or "@context" not in doc:
            raise _invalid(url)
        return doc

    def take_fetched(self) -> list[tuple[str, Any]]:
        with self._lock:
            fetched, self._fetched = self._fetched, []
        return fetched

    def _document(self, url: str, fetch: bool = True) -> Any:
        if is_core_url(url):
            return CORE_DOCUMENT
        doc = self.documents.get(url)
        if doc is None and HOSTED_PATH in url:
            doc = self.documents.get(HOSTED_PATH + url.rsplit("/", 1)[1])
        if doc is not None:
            return doc
        from wecity.context.entity import is_uri  # entity reads term maps from here: imported when needed

        if not is_uri(url):  # no IRI to retrieve (pyld takes any text with a colon for an absolute one)
            raise bad_request_data(f"@context {url!r} is not an IRI", f"@context {url!r} 不是 IRI")
        if not fetch:
            raise _not_available(url, "not kept by the broker, and not fetched here")
        doc = self.refetch(url)
        with self._lock:
            self.documents[url] = doc
            self._remember_remote(url)
            self._fetched.append((url, doc))
        return doc

    def _loader(self, url: str, options: Any = None) -> dict[str, Any]:
        return {"contextUrl": None, "documentUrl": url, "document": self._document(url),
                "contentType": "application/ld+json"}

    def _kept_only_loader(self, url: str, options: Any = None) -> dict[str, Any]:
        return {"contextUrl": None, "documentUrl": url, "document": self._document(url, fetch=False),
                "contentType": "application/ld+json"}

    # -- term maps ------------------------------------------------------------------------------

    def cached(self, key: str) -> TermMap | None:
        """The term map already built for a context key (a URL, or the JSON of an inline context)."""
        return self._maps.get(key)

    def term_map(self, context: Any, *, fetch: bool = True) -> TermMap:
        """The term map for a request's @context (a URL, an inline object or a list); core always last.
        With `fetch=False` (inside a write transaction, where a fetch would hold the writer for seconds) a
        document the broker does not keep is LdContextNotAvailable instead of being fetched."""
        if context is None or context == CORE_URL:
            return self.core
        key = context if isinstance(context, str) else json.dumps(context, sort_keys=True)
        found = self._maps.get(key)
        if found is not None:
            return found
        items: list[Any] = []
        for item in context if isinstance(context, list) else [context]:
            if isinstance(item, str) and item.startswith(HOSTED_PATH):
                items.extend(c for c in self._hosted_here(item) if not (isinstance(c, str) and is_core_url(c)))
            elif not (isinstance(item, str) and is_core_url(item)):
                items.append(item)
        built = self._build(items + [CORE_URL], self._loader if fetch else self._kept_only_loader)
        with self._lock:
            if len(self._maps) >= MAX_TERM_MAPS:  # bounded whatever @contexts callers send: the oldest goes
                self._maps.pop(next(iter(self._maps)))
            self._maps[key] = built
        return built

    def _hosted_here(self, path: str) -> list[Any]:
        """A reference relative to the broker itself (the Location of a hosted @context, as given to the
        client that added it): that @context's content, as the reference resolved against the request
        would find it."""
        doc = self.documents.get(HOSTED_PATH + path.rsplit("/", 1)[1])
        if not isinstance(doc, dict) or "@context" not in doc:
            raise bad_request_data(f"@context {path!r} names no @context this broker hosts",
                                   f"@context {path!r} 不是本代理托管的 @context")
        inner = doc["@context"]
        return list(inner) if isinstance(inner, list) else [inner]

    def _build(self, items: list[Any], loader: Callable[..., dict[str, Any]] | None = None) -> TermMap:
        for item in items:
            if not isinstance(item, str | dict):
                raise bad_request_data("@context entries must be URLs or objects", "@context 的每一项必须是 URL 或对象")
            if isinstance(item, dict) and any(isinstance(d, dict) and "@context" in d for d in item.values()):
                raise bad_request_data("a user @context cannot hold scoped contexts",
                                       "用户 @context 不能包含作用域上下文（scoped context）")
        options = {"documentLoader": loader or self._loader, "base": "", "processingMode": "json-ld-1.1"}
        processor = jsonld.JsonLdProcessor()
        try:
            active = processor.process_context(processor._get_initial_context(options), items, options)
        except jsonld.JsonLdError as exc:
            cause = _root_cause(exc)
            if isinstance(cause, DependencyUnavailable | ValidationFailed):
                raise cause from exc
            raise bad_request_data(f"invalid @context: {exc.type if hasattr(exc, 'type') else exc}",
                                   "@context 无效") from exc
        except ValueError as exc:  # pyld's IRI resolution: a context reference that is no absolute IRI
            raise bad_request_data(f"invalid @context: {exc}", "@context 无效：引用的不是绝对 IRI") from exc
        return TermMap(active)


def _root_cause(exc: BaseException) -> BaseException:
    seen = 0
    while seen < 10:
        nxt = getattr(exc, "cause", None) or exc.__cause__ or exc.__context__
        if nxt is None:
            return exc
        if isinstance(nxt, DependencyUnavailable | ValidationFailed):
            return nxt
        exc, seen = nxt, seen + 1
    return exc


def _invalid(url: str) -> ValidationFailed:
    """A remote @context that was retrieved but is none (5.5.6): the request's data is wrong."""
    return bad_request_data(f"@context {url} is not a JSON-LD context document (a JSON object with @context)",
                            f"@context {url} 不是 JSON-LD 上下文文档（带 @context 的 JSON 对象）")


def _not_available(url: str, why: str) -> DependencyUnavailable:
    return ld_context_not_available(f"@context {url} could not be retrieved ({why})",
                                    f"无法获取 @context {url}（{why}）")


def parse_link_header(value: str | None) -> str | None:
    """The URL of the JSON-LD context link in a `Link` header, or None when there is none."""
    if not value:
        return None
    for part in value.split(","):
        piece = part.strip()
        if not piece.startswith("<") or ">" not in piece:
            continue
        url, _, params = piece[1:].partition(">")
        if LINK_REL in params:
            return url.strip()
    raise bad_request_data("Link header has no JSON-LD context link", "Link 头中没有 JSON-LD 上下文链接")


def link_header(url: str) -> str:
    return f'<{url}>; rel="{LINK_REL}"; type="application/ld+json"'

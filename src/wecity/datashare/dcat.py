"""The catalogue as DCAT-AP (the EU application profile of W3C DCAT), built with rdflib and serialised as
Turtle or JSON-LD, so that a European-style harvester (or a CKAN with ckanext-dcat) reads it.

Each published dataset is a `dcat:Dataset` with its titles and descriptions tagged @zh and @en, its
publisher (a `foaf:Organization`), an EU data theme and update frequency from the Publications Office's
authority tables, keywords, spatial and temporal coverage, access rights (PUBLIC for open data, RESTRICTED
when shared with departments, NON_PUBLIC when not shared), and one `dcat:Distribution` per format of the
data API.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import weakref
from typing import Any

import orjson
from rdflib import BNode, Graph, Literal, URIRef
from rdflib.namespace import DCAT, DCTERMS, FOAF, RDF, XSD

EU_THEME = "http://publications.europa.eu/resource/authority/data-theme/"
EU_FREQUENCY = "http://publications.europa.eu/resource/authority/frequency/"
EU_ACCESS = "http://publications.europa.eu/resource/authority/access-right/"
EU_FILE_TYPE = "http://publications.europa.eu/resource/authority/file-type/"
FORMATS = {"JSON": "application/json", "CSV": "text/csv"}


def access_right(d: dict[str, Any]) -> str:
    if d["open_data"]:
        return "PUBLIC"
    return "NON_PUBLIC" if d["share_class"] == "not_shared" else "RESTRICTED"


def dataset_url(base: str, name: str) -> str:
    return f"{base}/data/{name}"


def data_api_url(base: str, name: str, fmt: str) -> str:
    return f"{base}/api/v1/data/{name}?format={fmt.lower()}"


def catalogue_graph(items: list[dict[str, Any]], *, base: str, title_zh: str, title_en: str) -> Graph:
    g = Graph()
    g.bind("dcat", DCAT)
    g.bind("dct", DCTERMS)
    g.bind("foaf", FOAF)
    catalogue = URIRef(f"{base}/data")
    g.add((catalogue, RDF.type, DCAT.Catalog))
    g.add((catalogue, DCTERMS.title, Literal(title_zh, lang="zh")))
    g.add((catalogue, DCTERMS.title, Literal(title_en, lang="en")))
    g.add((catalogue, DCTERMS.description, Literal("城市政务数据资源目录", lang="zh")))
    g.add((catalogue, DCTERMS.description, Literal("The city's catalogue of government data", lang="en")))
    publishers: dict[str, URIRef] = {}
    for d in items:
        uri = URIRef(dataset_url(base, d["name"]))
        g.add((catalogue, DCAT.dataset, uri))
        g.add((uri, RDF.type, DCAT.Dataset))
        g.add((uri, DCTERMS.identifier, Literal(d["name"])))
        for lang in ("zh", "en"):
            g.add((uri, DCTERMS.title, Literal(d[f"title_{lang}"], lang=lang)))
            g.add((uri, DCTERMS.description, Literal(d[f"description_{lang}"], lang=lang)))
        org = publishers.get(d["publisher"])
        if org is None:
            org = publishers[d["publisher"]] = URIRef(f"{base}/data?publisher={d['publisher']}")
            g.add((org, RDF.type, FOAF.Organization))
            g.add((org, FOAF.name, Literal(d["publisher_zh"], lang="zh")))
            g.add((org, FOAF.name, Literal(d["publisher_en"], lang="en")))
        g.add((uri, DCTERMS.publisher, org))
        g.add((uri, DCAT.theme, URIRef(EU_THEME + d["theme"])))
        g.add((uri, DCTERMS.accrualPeriodicity, URIRef(EU_FREQUENCY + d["frequency"])))
        g.add((uri, DCTERMS.accessRights, URIRef(EU_ACCESS + access_right(d))))
        for keyword in d["keywords"]:
            g.add((uri, DCAT.keyword, Literal(keyword)))
        g.add((uri, DCTERMS.spatial, Literal(d["spatial"])))
        if d["temporal_start"] or d["temporal_end"]:
            period = BNode()
            g.add((uri, DCTERMS.temporal, period))
            g.add((period, RDF.type, DCTERMS.PeriodOfTime))
            if d["temporal_start"]:
                g.add((period, DCAT.startDate, Literal(d["temporal_start"].isoformat(), datatype=XSD.date)))
            if d["temporal_end"]:
                g.add((period, DCAT.endDate, Literal(d["temporal_end"].isoformat(), datatype=XSD.date)))
        if d["issued_at"]:
            g.add((uri, DCTERMS.issued, Literal(d["issued_at"].isoformat(), datatype=XSD.dateTime)))
        g.add((uri, DCTERMS.modified, Literal(d["modified_at"].isoformat(), datatype=XSD.dateTime)))
        g.add((uri, DCAT.landingPage, URIRef(dataset_url(base, d["name"]))))
        for fmt, media_type in FORMATS.items():
            dist = URIRef(data_api_url(base, d["name"], fmt))
            g.add((uri, DCAT.distribution, dist))
            g.add((dist, RDF.type, DCAT.Distribution))
            g.add((dist, DCAT.accessURL, dist))
            g.add((dist, DCTERMS.format, URIRef(EU_FILE_TYPE + fmt)))
            g.add((dist, DCAT.mediaType, URIRef(f"https://www.iana.org/assignments/media-types/{media_type}")))
            g.add((dist, DCTERMS.title, Literal(f"{d['title_en']} ({fmt})", lang="en")))
    return g



# Serialised exports, by (format, base address): each with the catalogue list it was built from and a digest
# of that list's content. The catalogue cache (wecity.datashare.queries.published) hands out the same list
# until it is dropped (a publish, an upload, its few seconds running out); an export is served as it is
# while its list is still the one handed out, and after a drop only if the catalogue read again is the same.
_exports: dict[tuple[str, str], tuple[list[dict[str, Any]], bytes, str]] = {}
_exports_lock = threading.Lock()
MAX_EXPORTS = 16
# One build at a time per event loop: a build of a large catalogue takes seconds of CPU, and callers who
# find none cached wait for it rather than each start their own.
_building: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = weakref.WeakKeyDictionary()


def serialized(items: list[dict[str, Any]], *, base: str, fmt: str) -> str:
    """The catalogue `items` as DCAT-AP in rdflib's format `fmt` (turtle, json-ld, xml)."""
    graph = catalogue_graph(items, base=base, title_zh="城市数据资源目录", title_en="City data catalogue")
    return graph.serialize(format=fmt)


def _digest(items: list[dict[str, Any]]) -> bytes:
    """What the export is built from, in a few milliseconds for thousands of datasets."""
    return hashlib.blake2b(orjson.dumps(items, default=str, option=orjson.OPT_NON_STR_KEYS), digest_size=16).digest()


def _cached_or_built(key: tuple[str, str], items: list[dict[str, Any]], base: str, fmt: str) -> str:
    digest = _digest(items)
    hit = _exports.get(key)
    text = hit[2] if hit is not None and hit[1] == digest else serialized(items, base=base, fmt=fmt)
    with _exports_lock:
        if len(_exports) >= MAX_EXPORTS and key not in _exports:
            _exports.clear()
        _exports[key] = (items, digest, text)
    return text


async def export(db: Any, *, base: str, fmt: str) -> str:
    """The published catalogue as DCAT-AP, built off the event loop in a worker thread, and kept until the
    catalogue changes."""
    from wecity.datashare.queries import published

    key = (fmt, base)
    items = await db.read(published)
    hit = _exports.get(key)
    if hit is not None and hit[0] is items:
        return hit[2]
    loop = asyncio.get_running_loop()
    lock = _building.get(loop) or _building.setdefault(loop, asyncio.Lock())
    async with lock:
        items = await db.read(published)  # built by another caller while this one waited?
        hit = _exports.get(key)
        if hit is not None and hit[0] is items:
            return hit[2]
        return await asyncio.to_thread(_cached_or_built, key, items, base, fmt)

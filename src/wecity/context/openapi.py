"""The NGSI-LD operations' query parameters, headers and request bodies, for /openapi.json.

The handlers read their query string, headers and body themselves (strictly, and on the hot paths without
the framework's per-request parameter solving), so the framework sees none of them. Each route declares
them instead with `openapi_extra=operation(...)`, naming parameters and bodies defined once here; `register`
adds the definitions to the document's components. Names and clauses are those of ETSI GS CIM 009.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from wecity.context.entity import VALUE_MEMBER
from wecity.context.geo import GEOMETRY_TYPES, GEORELS
from wecity.context.linked import MAX_JOIN_LEVEL
from wecity.context.protocol import MAX_LIMIT, MAX_OFFSET
from wecity.core.http import amend_openapi

_VIEW_OPTIONS = ["keyValues", "simplified", "concise", "normalized", "sysAttrs"]
_TEMPORAL_OPTIONS = ["temporalValues", "aggregatedValues", "sysAttrs"]
_STRING = {"type": "string"}


def _query(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema or _STRING}


def _header(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "in": "header", "required": False, "description": description, "schema": schema or _STRING}


def _options(values: list[str], description: str) -> dict[str, Any]:
    """`options`: a comma-separated list of flags."""
    return {**_query("options", description, {"type": "array", "items": {"type": "string", "enum": values}}),
            "style": "form", "explode": False}


def _boolean(name: str, description: str) -> dict[str, Any]:
    return _query(name, description, {"type": "boolean", "default": False})


# The key of each parameter in components/parameters; several keys may share one name (`options`, `format`)
# where operations accept different values for it.
PARAMETERS: dict[str, dict[str, Any]] = {
    # Headers (clause 6.3)
    "tenant": _header("NGSILD-Tenant", "Tenant (clause 6.3.14); none for the default tenant",
                      {"type": "string", "pattern": r"^[A-Za-z0-9_\-.:]{1,64}$"}),
    "link": _header("Link", 'JSON-LD @context as a Link header with rel="http://www.w3.org/ns/json-ld#context" '
                            "(clause 6.3.5); only with Content-Type application/json"),
    "prefer": _header("Prefer", "Preferred NGSI-LD version, ngsi-ld=<version> (clause 6.3.6)"),
    "entityMapHeader": _header("NGSILD-EntityMap", "EntityMap to use, as the URI the broker returned "
                                                   "(clause 5.7.1.4)"),
    # Entity selection (clauses 4.9, 4.10, 4.17, 4.19, 6.4.3.2)
    "id": _query("id", "Entity ids: a comma-separated list of URIs"),
    "type": _query("type", "Entity type selection (clause 4.17): names, ',' or '|' for either, ';' for all, "
                           "'*' for any"),
    "idPattern": _query("idPattern", "Entity id pattern: a regular expression the ids match"),
    "attrs": _query("attrs", "Attribute names: a comma-separated list (attribute projection)"),
    "q": _query("q", "Query: NGSI-LD query language (clause 4.9)"),
    "csf": _query("csf", "Context source filter (clause 4.9)"),
    "scopeQ": _query("scopeQ", "Scope query (clause 4.19)"),
    "georel": _query("georel", "Geo-query relationship (clause 4.10): " + ", ".join(sorted(GEORELS)) +
                     "; near takes ;maxDistance==<m> or ;minDistance==<m>"),
    "geometry": _query("geometry", "Geo-query geometry type (clause 4.10)",
                       {"type": "string", "enum": sorted(GEOMETRY_TYPES)}),
    "coordinates": _query("coordinates", "Geo-query coordinates: a JSON array as in GeoJSON (clause 4.10)"),
    "geoproperty": _query("geoproperty", "Geo-query property, location by default (clause 4.10)"),
    "local": _boolean("local", "Local only: no distributed operation (clause 6.3.18)"),
    "splitEntities": _boolean("splitEntities", "Distributed query: the context sources are asked without q and "
                                               "scopeQ, which apply to the merged entities (clause 5.7.2.4)"),
    "keep": _query("keep", "Purge: the attributes to keep, every other one is deleted (clause 5.6.21)"),
    "drop": _query("drop", "Purge: the attributes to delete, the entities are kept (clause 5.6.21)"),
    "expandValues": _query("expandValues", "Attributes whose string values in q are expanded as terms "
                                           "(clause 4.9)"),
    "orderBy": _query("orderBy", "Ordering: comma-separated attribute;asc|desc|dist-asc|dist-desc"),
    "collation": _query("collation", "Ordering collation: a BCP 47 language tag"),
    "orderFrom": _query("orderFrom", "Ordering by distance from these coordinates (a JSON array)"),
    "entityMap": _boolean("entityMap", "Create an EntityMap of the result (clause 5.7.1.4)"),
    "entityMapLifetime": _query("entityMapLifetime", "How long the EntityMap is to live: an ISO 8601 duration, "
                                                     "bounded by the broker"),
    # Representation (clauses 4.5, 4.15, 6.3.7)
    "pick": _query("pick", "Entity members to include (projection, clause 4.21)"),
    "omit": _query("omit", "Entity members to leave out (projection, clause 4.21)"),
    "join": _query("join", "Linked entity retrieval (clause 4.5.23)",
                   {"type": "string", "enum": ["inline", "flat", "@none"]}),
    "joinLevel": _query("joinLevel", "Linked entity retrieval depth (clause 4.5.23)",
                        {"type": "integer", "minimum": 1, "maximum": MAX_JOIN_LEVEL}),
    "containedBy": _query("containedBy", "Linked entity retrieval: ids already seen, comma-separated "
                                         "(clause 4.5.23)"),
    "options": _options(_VIEW_OPTIONS, "Representation options (clause 6.3.7)"),
    "format": _query("format", "Representation (clause 6.3.7); wins over options",
                     {"type": "string", "enum": ["normalized", "keyValues", "simplified", "concise"]}),
    "lang": _query("lang", "Language filter: a language tag, a comma-separated list of them or * (clause 4.15)"),
    "datasetId": _query("datasetId", "Dataset ids of the attribute instances: a comma-separated list"),
    "geometryProperty": _query("geometryProperty", "GeoProperty used as the geometry of GeoJSON features "
                                                   "(clause 4.5.16); with Accept: application/geo+json"),
    # Pagination (clause 5.5.9)
    "limit": _query("limit", "Pagination: the most results in a page",
                    {"type": "integer", "minimum": 0, "maximum": MAX_LIMIT, "default": 20}),
    "offset": _query("offset", "Pagination: results to skip",
                     {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET, "default": 0}),
    "count": _boolean("count", "Request the total number of results (NGSILD-Results-Count header)"),
    # Writes (clauses 6.6, 6.7, 6.14, 6.15)
    "appendOptions": _options(["noOverwrite"], "Append Attributes options: noOverwrite keeps existing attributes"),
    "upsertOptions": _options(["replace", "update"], "Batch Upsert mode: replace (default) or update"),
    "updateOptions": _options(["noOverwrite"], "Batch Update options: noOverwrite keeps existing attributes"),
    "deleteAll": _boolean("deleteAll", "Delete every instance of the attribute (every datasetId)"),
    "deleteDatasetId": _query("datasetId", "Dataset id of the attribute instance to delete, or @none"),
    # Temporal (clause 6.18 to 6.21)
    "timerel": _query("timerel", "Temporal relationship (clause 4.11)",
                      {"type": "string", "enum": ["before", "after", "between"]}),
    "timeAt": _query("timeAt", "Temporal query time (clause 4.11)", {"type": "string", "format": "date-time"}),
    "endTimeAt": _query("endTimeAt", "Temporal query end time, with timerel=between (clause 4.11)",
                        {"type": "string", "format": "date-time"}),
    "lastN": _query("lastN", "Only the last n instances of each attribute", {"type": "integer", "minimum": 1}),
    "aggrMethods": _query("aggrMethods", "Aggregation functions: a comma-separated list (clause 4.5.19)"),
    "aggrPeriodDuration": _query("aggrPeriodDuration", "Aggregation period: an ISO 8601 duration from PT0.001S to "
                                                       "P1000Y, or PT0S for the whole time range (clause 4.5.19)"),
    "timeproperty": _query("timeproperty", "The time the interval applies to (clause 4.11)",
                           {"type": "string", "enum": ["observedAt", "createdAt", "modifiedAt", "deletedAt"]}),
    "temporalOptions": _options(_TEMPORAL_OPTIONS, "Temporal representation options (clause 6.3.7)"),
    "temporalFormat": _query("format", "Temporal representation (clause 6.3.7)",
                             {"type": "string", "enum": ["normalized", "temporalValues", "aggregatedValues"]}),
    # @context management (clause 6.30)
    "details": _boolean("details", "The detailed representation of each item, not only its name or URL"),
    "kind": _query("kind", "Kind of @context to list",
                   {"type": "string", "enum": ["Hosted", "Cached", "ImplicitlyCreated"]}),
    "reload": _boolean("reload", "Fetch a cached @context anew instead of removing it"),
}

_OBJECT = {"type": "object"}
_CONTEXT = {"description": "JSON-LD @context: a URL, an object of term definitions, or a list of them",
            "anyOf": [_STRING, _OBJECT, {"type": "array", "items": {"anyOf": [_STRING, _OBJECT]}}]}
# A name (clause 4.6.2): a term (a letter, then letters, digits, underscores) or an IRI (wecity.context.entity).
_NAME = {"type": "string", "pattern": r"^(?:[A-Za-z][A-Za-z0-9_]*|[A-Za-z][A-Za-z0-9+.\-]*:[^<>\"'=;()\s]+)$"}
_TYPE = {"description": "Entity type: a name or a list of names",
         "anyOf": [_NAME, {"type": "array", "items": _NAME, "minItems": 1}]}
_URI = {"type": "string", "format": "uri"}
_SELECTORS = {"type": "array", "minItems": 1, "items": {"type": "object", "required": ["type"], "properties": {
    "type": _NAME, "id": _URI, "idPattern": _STRING}}}
# An attribute's value: normalized (an object with its type), concise (a bare value), or several instances.
_ATTRIBUTE = {"not": {"type": "null"}}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": "#/components/schemas/" + name}


def _schema(description: str, *, required: tuple[str, ...] = (), members: dict[str, Any] | None = None,
            **properties: Any) -> dict[str, Any]:
    """A loose object: the handlers check it member by member. `members`: the schema of the members not
    named in `properties` (the attributes of an entity), else anything."""
    out: dict[str, Any] = {"type": "object", "description": description, "properties": properties,
                           "additionalProperties": True}
    if members is not None:
        out["additionalProperties"] = members
        out["propertyNames"] = {"anyOf": [_NAME, {"enum": list(properties)}]}  # names, or the members named
    if required:
        out["required"] = list(required)
    return out


_SCOPE = {"description": "Scope (clause 4.18): one or a list", "anyOf": [_STRING, {"type": "array", "items": _STRING}]}
_ENTITY: dict[str, Any] = {"id": _URI, "type": _TYPE, "scope": _SCOPE}
_ENDPOINT = _schema("Endpoint (clause 5.2.15)", required=("uri",), uri=_URI, accept=_STRING)
_NOTIFICATION = _schema("NotificationParams (clause 5.2.14)", required=("endpoint",), endpoint=_ENDPOINT,
                        attributes={"type": "array", "items": _NAME}, format=_STRING)

_REGISTRATION_INFO = _schema("RegistrationInfo (clause 5.2.10)", entities={
    "type": "array", "minItems": 1, "items": {"type": "object", "properties": {"type": _TYPE, "id": _URI,
                                                                               "idPattern": _STRING}}},
    propertyNames={"type": "array", "items": _NAME}, relationshipNames={"type": "array", "items": _NAME})
_KEY_VALUE = _schema("KeyValuePair (clause 5.2.22)", required=("key", "value"), key=_STRING, value=_STRING)

# Request bodies (without @context: application/ld+json adds it, see `operation`).
SCHEMAS: dict[str, dict[str, Any]] = {
    "NgsiLdEntity": _schema("NGSI-LD Entity (clause 5.2.4): id, type and attributes", required=("id", "type"),
                            members=_ATTRIBUTE, **_ENTITY),
    "NgsiLdEntityFragment": _schema("NGSI-LD Entity fragment: attributes, optionally type and scope",
                                    members=_ATTRIBUTE, **_ENTITY),
    "NgsiLdAttribute": _schema("NGSI-LD attribute (clause 5.2.5 to 5.2.7): a Property, Relationship, "
                               "GeoProperty or another attribute type",
                               type={"type": "string", "enum": sorted(VALUE_MEMBER)}, value={}, object={},
                               datasetId=_URI, observedAt={"type": "string", "format": "date-time"}),
    "NgsiLdEntityList": {"type": "array", "description": "Entities of a batch operation (clause 5.6.7)",
                         "minItems": 1, "items": _ref("NgsiLdEntity")},
    "NgsiLdEntityIdList": {"type": "array", "description": "Entity ids of a batch delete (clause 5.6.10)",
                           "minItems": 1, "items": _URI},
    "NgsiLdQuery": _schema("NGSI-LD Query (clause 5.2.23)", required=("type",),
                           type={"type": "string", "enum": ["Query"]}, entities=_SELECTORS,
                           attrs={"type": "array", "items": _NAME, "minItems": 1}, q=_STRING, scopeQ=_STRING,
                           geoQ=_OBJECT),
    "NgsiLdSubscription": {**_schema("NGSI-LD Subscription (clause 5.2.12)", required=("type", "notification"),
                                     id=_URI, type={"type": "string", "enum": ["Subscription"]},
                                     entities=_SELECTORS, watchedAttributes={"type": "array", "items": _NAME,
                                                                             "minItems": 1},
                                     q=_STRING, notification=_NOTIFICATION),
                           "anyOf": [{"required": ["entities"]}, {"required": ["watchedAttributes"]}]},
    "NgsiLdSubscriptionFragment": {**_schema("NGSI-LD Subscription fragment (clause 5.8.2)",
                                             notification=_NOTIFICATION), "minProperties": 1},
    "NgsiLdCSourceRegistration": _schema(
        "NGSI-LD CSourceRegistration (clause 5.2.9); members beyond those of 5.2.9 are context source properties",
        required=("type", "information", "endpoint"), id=_URI,
        type={"type": "string", "enum": ["ContextSourceRegistration"]},
        information={"type": "array", "minItems": 1, "items": _REGISTRATION_INFO}, endpoint=_URI,
        mode={"type": "string", "enum": ["inclusive", "exclusive", "redirect", "auxiliary"]},
        operations={"type": "array", "minItems": 1, "items": _STRING}, expiresAt={"type": "string",
                                                                                  "format": "date-time"},
        contextSourceInfo={"type": "array", "items": _KEY_VALUE}, management=_OBJECT, scope=_SCOPE),
    "NgsiLdCSourceRegistrationFragment": {**_schema("NGSI-LD CSourceRegistration fragment (clause 5.9.3)"),
                                          "minProperties": 1},
    "NgsiLdTemporalEntity": _schema("NGSI-LD temporal Entity (clause 5.2.20): attributes as lists of instances",
                                    required=("id", "type"), members={"type": "array", "items": _OBJECT},
                                    **_ENTITY),
    "JsonLdContext": _schema("A JSON-LD @context for the broker to host (clause 5.13.2)", required=("@context",),
                             **{"@context": _CONTEXT}),
    "Snapshot": _schema("Snapshot (clause 5.2.41): the queries whose results are frozen, and its priority",
                        required=("snapshotQueries",), snapshotQueries={"type": "array", "items": _OBJECT},
                        snapshotPriority={"type": "integer", "minimum": 1}),
    "SnapshotFragment": _schema("Snapshot update or clone (clauses 5.16.2, 5.16.4): its priority",
                                snapshotPriority={"type": "integer", "minimum": 1}),
    "EntityMapFragment": _schema("EntityMap update (clause 5.14.2): its expiry, bounded by the broker",
                                 expiresAt={"type": "string", "format": "date-time"}),
}
_WITHOUT_LD = {"NgsiLdEntityIdList", "JsonLdContext", "EntityMapFragment", "SnapshotFragment"}  # their media type is application/json only
_IN_BODY = "Ld"  # the suffix of a body's schema as application/ld+json


def _with_context(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` as application/ld+json: each entity (or the object) carries its @context."""
    if schema["type"] == "array":
        return {**schema, "items": {"$ref": schema["items"]["$ref"] + _IN_BODY}}
    out = {**schema, "properties": {**schema["properties"], "@context": _CONTEXT},
           "required": [*schema.get("required", ()), "@context"]}
    if "propertyNames" in schema:
        out["propertyNames"] = {"anyOf": [_NAME, {"enum": list(out["properties"])}]}
    return out


SCHEMAS.update({name + _IN_BODY: _with_context(schema) for name, schema in SCHEMAS.items()
                if name not in _WITHOUT_LD})


def operation(*parameters: str, body: str | None = None, answers: tuple[str, ...] = ()) -> dict[str, Any]:
    """`openapi_extra` for a route: the parameters (keys of PARAMETERS) and the body (a key of SCHEMAS), as
    application/json with the @context in a Link header or, for NGSI-LD documents, as application/ld+json
    with the @context in the body (clause 6.3.5). `answers`: the media types of a 200, as the Accept header
    asks (wecity.context.protocol.JSON_LD or GEOJSON, as `respond` offers them)."""
    extra: dict[str, Any] = {"parameters": [{"$ref": "#/components/parameters/" + p} for p in parameters]}
    if body is not None:
        content = {"application/json": {"schema": _ref(body)}}
        if body not in _WITHOUT_LD:
            content["application/ld+json"] = {"schema": _ref(body + _IN_BODY)}
        extra["requestBody"] = {"required": True, "content": content}
    if answers:
        extra["responses"] = {"200": {"description": "Successful Response",
                                      "content": {m: {"schema": {}} for m in answers}}}
    return extra


# The parameter sets of whole families of operations.
HEADERS = ("tenant", "link")  # every operation on entities or subscriptions reads them
PAGING = ("limit", "offset", "count")
VIEW = ("options", "format", "lang", "datasetId")
SHAPE = ("pick", "omit", "join", "joinLevel", "containedBy")
TEMPORAL = ("attrs", "timerel", "timeAt", "endTimeAt", "lastN", "temporalOptions", "temporalFormat", "aggrMethods",
            "aggrPeriodDuration")
TEMPORAL_VIEW = ("timeproperty", "lang", "datasetId", "local", "pick", "omit")


# The path parameters, as the broker takes them (the framework knows only that they are strings).
# An id in a path segment: a URI without "/" (its escape %2F reads as "/" too); IRIs are taken as well.
_ID_IN_PATH = {"type": "string", "pattern": r"^[A-Za-z][A-Za-z0-9+.\-]*:[!#-.0-;=?-\[\]_a-z~]+$"}
PATH_PARAMETERS = {"entity_id": ("Entity id: a URI", _ID_IN_PATH),
                   "sub_id": ("Subscription id: a URI", _ID_IN_PATH),
                   "reg_id": ("Context source registration id: a URI", _ID_IN_PATH),
                   "attr": ("Attribute name (clause 4.6.2)", _NAME)}


def _amend(doc: dict[str, Any]) -> None:
    components = doc.setdefault("components", {})
    components.setdefault("parameters", {}).update(PARAMETERS)
    components.setdefault("schemas", {}).update(SCHEMAS)
    for path, item in doc.get("paths", {}).items():
        if not path.startswith("/ngsi-ld/"):
            continue
        for op in item.values():
            for param in op.get("parameters", ()):
                if param.get("in") == "path" and param.get("name") in PATH_PARAMETERS:
                    param["description"], param["schema"] = PATH_PARAMETERS[param["name"]]


def register(app: FastAPI) -> None:
    amend_openapi(app, _amend)

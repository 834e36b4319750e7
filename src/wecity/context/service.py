"""The context broker's service API, the one module other domains (IoT ingestion, the demo city) and the
broker's routes call: the verbs on entities (`verbs`), batch operations (`batch`), entity reads (`rows`)
and queries (`search`). Each change writes the entity, its attribute history and the notifications it
triggers in one transaction."""

from __future__ import annotations

from wecity.context.batch import BatchResult, batch_create, batch_delete, batch_merge, batch_upsert
from wecity.context.env import Env, Stored
from wecity.context.rows import entities_by_id, get, lock_entities, lock_ids, not_found, require
from wecity.context.search import Page, Query, compile_pattern, entity_types, query, query_page
from wecity.context.verbs import (
    UpdateResult,
    append,
    create,
    delete,
    delete_attr,
    merge,
    patch_attr,
    purge,
    replace,
    replace_attr,
    update,
)

__all__ = [
    "BatchResult", "Env", "Page", "Query", "Stored", "UpdateResult", "append", "batch_create", "batch_delete",
    "batch_merge", "batch_upsert", "compile_pattern", "create", "delete", "delete_attr", "entities_by_id",
    "entity_types", "get", "lock_entities", "lock_ids", "merge", "not_found", "patch_attr", "purge", "query", "query_page", "replace",
    "replace_attr", "require", "update",
]

"""Entities another domain keeps in step with its own records (the case engine's `ServiceRequest`s): the
broker serves them, queries them and notifies subscribers of their changes, but only their owner writes
them. A write through the API (its `Env` carries `Registry.owned_entities`) to such an entity is refused
with OperationNotSupported (422): the request is well-formed and its credentials may be good, but this
operation is not offered on that resource, whoever asks. The owning domain writes through the same verbs
with an `Env` that names no owned entities, so history and subscriptions work as for any entity."""

from __future__ import annotations

from wecity.context.env import Env
from wecity.context.errors import operation_not_supported
from wecity.core.errors import ValidationFailed


def refusal(env: Env, entity_id: str) -> ValidationFailed | None:
    """Why `env` may not write `entity_id` (None: it may)."""
    for prefix, owner in env.owned.items():
        if entity_id.startswith(prefix):
            return operation_not_supported(
                f"{entity_id} is kept by the {owner} domain and is read-only through NGSI-LD",
                f"{entity_id} 由 {owner} 业务域维护，NGSI-LD 接口只读")
    return None


def require_writable(env: Env, entity_id: str) -> None:
    if env.owned:
        refused = refusal(env, entity_id)
        if refused is not None:
            raise refused

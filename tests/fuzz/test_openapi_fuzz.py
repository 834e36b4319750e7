"""Fuzzing the API from its own OpenAPI document: no generated request may cause a server error.

schemathesis generates requests for every operation in /openapi.json (bounded examples per operation,
derandomized so a run is repeatable) and sends them to the app, signed in as the admin so that the
staff endpoints are exercised past authentication too. Any 5xx fails the test.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings

from wecity.api.app import create_app
from wecity.identity.models import users
from wecity.identity.service import start_session

from ..conftest import SEED_TIME, City

MAX_EXAMPLES = 15


@pytest.fixture
def fuzz_app(sqlite_city: City) -> Iterator[tuple[object, str]]:
    app = create_app(sqlite_city.settings, clock=sqlite_city.clock, db=sqlite_city.db)
    # A generated @context URL is never fetched: the broker answers as for an unreachable one.
    app.state.ctx.services["ngsild_fetcher"] = _no_network

    def session(conn: sa.Connection) -> str:
        admin = conn.execute(sa.select(users.c.id).where(users.c.username == "admin")).scalar_one()
        return start_session(conn, admin, SEED_TIME)

    token = sqlite_city.db.write_sync(session)
    yield app, token


def _no_network(url: str) -> object:
    raise OSError(f"the fuzzing sends nothing to {url}")


def _operations(app: object) -> list[object]:
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    # Signing out ends the session the fuzzer uses: do it last, so everything else runs signed in.
    return sorted(operations, key=lambda op: (op.method.upper() == "DELETE" and op.path.endswith("/auth/token")))


def test_no_server_errors(fuzz_app: tuple[object, str]) -> None:
    app, token = fuzz_app
    failures: list[str] = []
    statuses: dict[int, int] = {}
    operations = _operations(app)
    assert len(operations) > 40  # Open311, NGSI-LD, staff, citizen, geo, media, operations

    for operation in operations:
        @given(case=operation.as_strategy())  # type: ignore[attr-defined]
        @settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def run(case: schemathesis.Case) -> None:
            try:
                response = case.call(headers={"Authorization": f"Bearer {token}"})
            except Exception as exc:  # an unhandled error: its 500 was sent, then the error raised through
                statuses[500] = statuses.get(500, 0) + 1
                failures.append(f"{case.method} {case.formatted_path} -> {type(exc).__name__}: {str(exc)[:200]}")
                return
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} -> {response.status_code}: "
                                f"{response.text[:200]}")

        run()
    print(f"fuzzed {len(operations)} operations, {sum(statuses.values())} requests, statuses {sorted(statuses.items())}")
    assert sum(statuses.values()) >= 3 * len(operations)
    assert not failures, "\n".join(failures[:20])

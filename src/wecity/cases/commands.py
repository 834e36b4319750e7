"""`wecity cases ...`: the case engine's maintenance commands."""

from __future__ import annotations

import argparse
from typing import Any

from wecity.core.commands import database, now


def publish_all_after(conn: Any, after: int, chunk: int) -> tuple[int, int]:
    from wecity.cases.ngsild import publish_all

    return publish_all(conn, now(), after_id=after, limit=chunk)


def cmd_publish_ngsild(args: argparse.Namespace) -> int:
    """Write (or bring in step) the NGSI-LD `ServiceRequest` entity of every case at once, as a repair (the
    runner's `cases.ngsild` job keeps them from the case events). Each chunk is one transaction."""
    db = database(pool_size=1)
    after, written = 0, 0
    try:
        while True:
            last, done = db.write_sync(publish_all_after, after, args.chunk)
            if last == after:
                break
            after, written = last, written + done
    finally:
        db.close()
    print(f"{written} ServiceRequest entities written or brought in step / 已写入或同步 {written} 个 ServiceRequest 实体")
    return 0


def add_commands(sub: Any) -> None:
    cases = sub.add_parser("cases", help="cases / 案件").add_subparsers(dest="cases_command", required=True)
    publish = cases.add_parser("publish-ngsild", help="write every case's NGSI-LD ServiceRequest entity / "
                               "为每个案件写入 NGSI-LD ServiceRequest 实体")
    publish.add_argument("--chunk", type=int, default=1000, help="cases per transaction / 每个事务的案件数")
    publish.set_defaults(func=cmd_publish_ngsild)

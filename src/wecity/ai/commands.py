"""`wecity ai ...`: evaluate the report-category classifier on a labelled CSV file."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

MAX_REPEATS = 100


def cmd_evaluate(args: argparse.Namespace) -> int:
    from wecity.ai.evaluate import evaluate, read_rows, repeated

    if bool(args.lat) != bool(args.long):
        print("--lat and --long go together / --lat 与 --long 须同时给出", file=sys.stderr)
        return 2
    if args.repeats is not None and (args.split or not 2 <= args.repeats <= MAX_REPEATS):
        print(f"--repeats takes 2 to {MAX_REPEATS} random splits, and no --split column / "
              f"--repeats 须为 2 至 {MAX_REPEATS}，且不能与 --split 同用", file=sys.stderr)
        return 2
    rows = read_rows(Path(args.file), text=args.text, label=args.label, lat=args.lat, long=args.long,
                     split=args.split)
    say = lambda line: print(line, flush=True)  # noqa: E731
    result = evaluate(rows, say=say)
    if args.repeats:
        result["repeated"] = repeated(rows, args.repeats, result["difference"]["macro_f1"], say=say)
    print(json.dumps({"file": Path(args.file).name, **result}, ensure_ascii=False), flush=True)
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from wecity.ai.training import train_sync
    from wecity.core.commands import opened

    with opened() as ctx:
        card = train_sync(ctx.db, var_dir=Path(ctx.settings.var_dir), now=ctx.clock.now(), by="cli")
    m = card["metrics"]
    print(f"model v{card['version']}: {card['state']}; held-back cases {card['rows_holdout']}, macro-F1 "
          f"{m['macro_f1']}, top-3 {m['top3']} / 模型 v{card['version']}："
          f"{'已启用' if card['state'] == 'serving' else '未启用（不优于在用模型）'}")
    print(json.dumps({k: card[k] for k in ("version", "state", "metrics", "serving_metrics")}, ensure_ascii=False))
    return 0


def cmd_import_history(args: argparse.Namespace) -> int:
    from pathlib import Path

    from wecity.ai.training import import_history
    from wecity.core.commands import opened

    path = Path(args.file)
    with opened() as ctx:
        counts = ctx.db.write_sync(lambda c: import_history(
            c, path, text=args.text, label=args.label, lat=args.lat, long=args.long, time=args.time,
            now=ctx.clock.now()))
    print(f"{counts['imported']:,} past cases imported of {counts['read']:,} rows ({counts['without_label']} without "
          f"a category, {counts['without_text']} without text, {counts['repeated']} repeated); `wecity ai train` "
          f"learns from them / 已导入 {counts['imported']:,} 条历史案件")
    return 0


def add_commands(sub: Any) -> None:
    ai = sub.add_parser("ai", help="the AI platform / 智能中台").add_subparsers(dest="ai_command", required=True)
    ev = ai.add_parser("evaluate", help="train the report classifier and a baseline on a labelled CSV and score "
                                        "both; the figures as JSON on the last line / 评估案件分类模型")
    ev.add_argument("file", help="UTF-8 CSV with a header row")
    ev.add_argument("--text", action="append", required=True, metavar="COL",
                    help="a text column; several are joined in order (title, then text) / 文本列，可多次给出")
    ev.add_argument("--label", required=True, metavar="COL", help="the category column / 类别列")
    ev.add_argument("--lat", metavar="COL", help="latitude column (WGS-84) / 纬度列")
    ev.add_argument("--long", metavar="COL", help="longitude column (WGS-84) / 经度列")
    ev.add_argument("--split", metavar="COL", help="rows saying `train` train, the others test; without it a "
                                                   "stratified 80/20 split, seed 42 / 划分列")
    ev.add_argument("--repeats", type=int, metavar="N",
                    help="also N stratified 80/20 splits (seeds 42…), model minus baseline on each, their mean and "
                         "standard error: for files too small for one split to tell / 另做 N 次随机划分")
    ev.set_defaults(func=cmd_evaluate)
    tr = ai.add_parser("train", help="train the category model on the city's cases; it serves only if better on "
                                     "the held-back cases / 用本市案件训练类别模型")
    tr.set_defaults(func=cmd_train)
    imp = ai.add_parser("import-history", help="load past cases (text, category, place, time) from a CSV file so "
                                               "that a new city starts with a model / 导入历史案件")
    imp.add_argument("file")
    imp.add_argument("--text", action="append", required=True, help="text column (repeat to join several)")
    imp.add_argument("--label", required=True, help="the column with the city's category code")
    imp.add_argument("--lat")
    imp.add_argument("--long")
    imp.add_argument("--time", help="ISO 8601; without a zone, the city's local time")
    imp.set_defaults(func=cmd_import_history)

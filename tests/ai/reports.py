"""Small labelled report files, made up here with a seeded generator: one in Chinese, one in English, with
categories no real file has."""

from __future__ import annotations

import csv
import random
from pathlib import Path

ZH = {
    "井盖缺失": ["井盖", "窨井", "下水道口", "盖板"],
    "夜间噪音": ["噪音", "施工声", "广场舞", "喇叭"],
    "占道经营": ["摊贩", "占道", "夜市", "流动摊点"],
    "路灯故障": ["路灯", "灯不亮", "照明", "灯杆"],
}
ZH_FILLER = ["市民反映", "附近", "小区门口", "已经好几天了", "请尽快处理", "影响出行", "A3区", "大道", "希望相关部门关注"]
EN = {
    "Loose Manhole": ["manhole", "cover", "sewer lid", "drain cover"],
    "Barking Dog": ["dog", "barking", "howling", "puppy"],
    "Abandoned Bicycle": ["bicycle", "bike", "rusty frame", "chained"],
}
EN_FILLER = ["please", "near the corner of", "for two weeks", "someone should look", "Main Street", "again", "very"]


def _sentence(rng: random.Random, words: list[str], filler: list[str], joiner: str) -> str:
    chosen = rng.sample(words, 2) + rng.sample(filler, 3)
    rng.shuffle(chosen)
    return joiner.join(chosen)


def write_zh(path: Path, *, per_label: int = 40, unlabelled: int = 5, seed: int = 7) -> Path:
    """title, text, category, part (train for about three quarters of each category's rows)."""
    rng = random.Random(seed)
    rows = []
    for label, words in ZH.items():
        for i in range(per_label):
            rows.append({"title": _sentence(rng, words, ZH_FILLER, ""), "text": _sentence(rng, words, ZH_FILLER, "，"),
                         "category": label, "part": "train" if i % 4 else "test"})
    for _ in range(unlabelled):
        rows.append({"title": "咨询", "text": _sentence(rng, ZH_FILLER, ZH_FILLER, "，"), "category": "", "part": "train"})
    rows.append({"title": "", "text": "", "category": "井盖缺失", "part": "train"})  # no text
    rows.append(dict(rows[0]))  # the same text again
    rng.shuffle(rows)
    return _write(path, rows)


def write_en(path: Path, *, per_label: int = 30, seed: int = 11) -> Path:
    """description, kind, lat, lng; labels with many, two and one rows."""
    rng = random.Random(seed)
    centres = {"Loose Manhole": (41.49, -71.31), "Barking Dog": (41.47, -71.30), "Abandoned Bicycle": (41.50, -71.33)}
    rows = []
    for label, words in EN.items():
        lat, lng = centres[label]
        for _ in range(per_label):
            rows.append({"description": _sentence(rng, words, EN_FILLER, " "), "kind": label,
                         "lat": f"{lat + rng.uniform(-0.004, 0.004):.6f}", "lng": f"{lng + rng.uniform(-0.004, 0.004):.6f}"})
    rows += [{"description": "a fallen tree blocks the path", "kind": "Fallen Tree", "lat": "", "lng": ""},
             {"description": "tree down across the path after the storm", "kind": "Fallen Tree", "lat": "41.48",
              "lng": "-71.32"},
             {"description": "thank you to the crew who fixed our street", "kind": "Thanks", "lat": "41.48",
              "lng": "-71.32"},
             {"description": "no idea what this is", "kind": "", "lat": "41.48", "lng": "-71.32"}]
    rng.shuffle(rows)
    return _write(path, rows)


def _write(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path

"""The 街道 (sub-districts) and 乡镇 of the city's districts, from the national division codes.

`data/streets.csv` holds those of the demo cities (长沙 4301, 广州 4401, 深圳 4403), taken from the npm
package china-division 2.7.0 (data/PROVENANCE.md). The codes carry no coordinates: a 街道 found by name
answers its district, placed at a point inside the district's outline. For another city, make its file
with `python -m wecity.geo.divisions STREETS_CSV CITY_CODE... > streets.csv` from the package's
`dist/streets.csv` and put it at `<var dir>/streets.csv`, which is read instead of the shipped file.
"""

from __future__ import annotations

import csv
import functools
import io
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Street:
    code: str  # 9 digits: the district's 6, then the street's 3
    name: str
    area_code: str  # the district's adcode, as the areas table keeps it


def parse_streets(text: str) -> tuple[Street, ...]:
    rows = csv.DictReader(io.StringIO(text))
    return tuple(Street(r["code"], r["name"], r["area_code"]) for r in rows if r.get("name") and r.get("area_code"))


@functools.lru_cache(maxsize=4)
def load_streets(path: str | None = None) -> tuple[Street, ...]:
    """The streets file given, or the one shipped for the demo cities."""
    if path:
        return parse_streets(Path(path).read_text("utf-8"))
    return parse_streets(resources.files("wecity.geo").joinpath("data/streets.csv").read_text("utf-8"))


def extract(streets_csv: Path, city_codes: list[str]) -> str:
    """The rows of china-division's dist/streets.csv (code,name,areaCode,provinceCode,cityCode) whose city
    is one of `city_codes` (4 digits, 4301), as this module's CSV."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["code", "name", "area_code"])
    with streets_csv.open(encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if row["cityCode"] in city_codes:
                writer.writerow([row["code"], row["name"], row["areaCode"]])
    return out.getvalue()


if __name__ == "__main__":  # pragma: no cover - a maintainer's tool
    sys.stdout.write(extract(Path(sys.argv[1]), sys.argv[2:]))

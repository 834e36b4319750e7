"""Layering: a domain imports only the domains before it in DOMAINS (and the base, `wecity.core`).

Later domains are heard through events on the app's registry, never imported; the assemblies on top (the
app factory, the CLI, the demo city) may import every domain. Imports inside functions count too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import wecity
from wecity.domains import DOMAINS

SOURCE = Path(wecity.__file__).parent
# Packages and modules that assemble the domains rather than being one.
ASSEMBLIES = {"api", "cli", "demo", "domains", "__main__", "__init__"}


def _imported_packages(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        found += [(node.lineno, name.split(".")[1]) for name in names
                  if name.startswith("wecity.") and len(name.split(".")) > 1]
    return found


def test_every_package_is_a_domain_or_an_assembly() -> None:
    packages = {p.stem if p.is_file() else p.name for p in SOURCE.iterdir()
                if (p.is_dir() and (p / "__init__.py").exists()) or p.suffix == ".py"}
    assert packages - set(DOMAINS) - ASSEMBLIES == set()
    assert set(DOMAINS) <= packages, "DOMAINS names a package that does not exist"


def test_domains_import_only_the_domains_before_them() -> None:
    rank = {domain: i for i, domain in enumerate(DOMAINS)}
    wrong = []
    for domain in DOMAINS:
        for path in sorted((SOURCE / domain).rglob("*.py")):
            for line, target in _imported_packages(path):
                if target in rank and rank[target] > rank[domain]:
                    wrong.append(f"{path.relative_to(SOURCE)}:{line} imports wecity.{target}")
                elif target not in rank and target != "domains":
                    wrong.append(f"{path.relative_to(SOURCE)}:{line} imports wecity.{target}, which is not a domain")
    assert wrong == []

"""The layers of docs/architecture.md, checked on the imports of the source files (parsed, not run)."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
STORES = sorted((ROOT / "dashboard" / "stores").glob("*.py"))


def imported_modules(path: Path, root: Path = ROOT) -> set[str]:
    """Absolute names of every module ``path`` imports (relative imports resolved against its
    package), including ``from X import name`` as ``X.name`` since the name may be a module."""
    package = list(path.relative_to(root).with_suffix("").parts[:-1])
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def test_the_resolver_sees_relative_and_absolute_imports(tmp_path):
    # A file placed as dashboard/stores/x.py importing figures both ways is caught both ways.
    probe = tmp_path / "dashboard" / "stores" / "x.py"
    probe.parent.mkdir(parents=True)
    probe.write_text("from ..figures import style\nfrom dash import html\nimport dashboard.figures.margin\n"
                     "from . import session\n")
    seen = imported_modules(probe, tmp_path)
    assert {"dashboard.figures.style", "dash.html", "dashboard.figures.margin", "dashboard.stores.session"} <= seen


@pytest.mark.parametrize("path", STORES, ids=lambda p: p.name)
def test_store_modules_build_no_html_and_no_figures(path):
    forbidden = ("dashboard.figures", "dashboard.components", "dash.html", "dash.dcc", "dash_ag_grid", "plotly")
    bad = sorted(m for m in imported_modules(path) if any(m == f or m.startswith(f + ".") for f in forbidden))
    assert bad == [], f"{path.name} imports {bad}"


def test_every_store_family_has_its_module():
    assert {p.stem for p in STORES} >= {"session", "account", "liquidation", "exchange"}


@pytest.mark.parametrize("path", sorted((ROOT / "engine").rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_engine_imports_nothing_of_the_dashboard(path):
    bad = sorted(m for m in imported_modules(path) if m.split(".")[0] in ("dash", "dashboard", "plotly", "flask"))
    assert bad == [], f"{path.relative_to(ROOT)} imports {bad}"

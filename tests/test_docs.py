"""The methodology the code cites is in the repository, and every citation resolves.

Docstrings cite ``docs/methodology.md §n`` or ``§n.m`` (also as lists: "§6, §7"); each cited
number must be a section heading of docs/methodology.md.  No file may point outside the
repository at the design notes it was once written from.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
METHODOLOGY = ROOT / "docs" / "methodology.md"
CITING = ("engine", "dashboard", "tests")
TEXT_SUFFIXES = {".py", ".json", ".md", ".txt", ".toml", ".cfg", ".csv", ".css", ".js", ".yml", ".yaml", ""}
SKIP_DIRS = {".git", "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", "node_modules", "build", "dist"}

# "docs/methodology.md §6.2, §9" -> the run of section marks after the file name.
CITATION = re.compile(r"docs/methodology\.md\s*((?:§\d+(?:\.\d+)?(?:\s*(?:,|and|or|/)\s*)?)+)")
SECTION = re.compile(r"§(\d+(?:\.\d+)?)")
HEADING = re.compile(r"^#{2,4}\s+(\d+(?:\.\d+)?)\.?\s", re.MULTILINE)
# Built from pieces so that this file does not match itself.
FORBIDDEN = ("../" + "shared", "/work/" + "shared", "DESIGN" + " §", "DESIGN" + ".md")


def _files(roots):
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS and not d.endswith(".egg-info")]
            for name in filenames:
                path = Path(dirpath) / name
                if path.suffix in TEXT_SUFFIXES:
                    yield path


def _text(path: Path) -> str | None:
    data = path.read_bytes()
    return None if b"\0" in data else data.decode("utf-8", errors="replace")


def citations() -> dict[str, list[str]]:
    """Cited section number -> the files (and lines) that cite it."""
    found: dict[str, list[str]] = {}
    for path in _files(ROOT / d for d in CITING):
        text = _text(path)
        if text is None:
            continue
        for m in CITATION.finditer(text):
            line = text.count("\n", 0, m.start()) + 1
            for number in SECTION.findall(m.group(1)):
                found.setdefault(number, []).append(f"{path.relative_to(ROOT)}:{line}")
    return found


def headings() -> list[str]:
    return HEADING.findall(METHODOLOGY.read_text(encoding="utf-8"))


def test_citation_pattern_reads_lists_and_subsections():
    text = "as in docs/methodology.md §6.2, §9 and docs/methodology.md §7's ramp; not §8 here"
    numbers = [n for m in CITATION.finditer(text) for n in SECTION.findall(m.group(1))]
    assert numbers == ["6.2", "9", "7"]
    assert HEADING.findall("## 6. Margin\n### 6.3 SPAN-style\n#### not a section\n") == ["6", "6.3"]


def test_every_cited_section_exists():
    cited = citations()
    assert cited, "no citation of docs/methodology.md found: the pattern or the tree changed"
    present = set(headings())
    missing = {n: where for n, where in cited.items() if n not in present}
    assert not missing, f"cited sections without a heading in docs/methodology.md: {missing}"


def test_sections_are_numbered_once_in_order():
    numbers = headings()
    assert len(numbers) == len(set(numbers)), f"a section number is used twice: {numbers}"
    top = [int(n) for n in numbers if "." not in n]
    assert top == list(range(1, 12))
    assert {"6.1", "6.2", "6.3", "6.4", "6.5"} <= set(numbers)


@pytest.mark.parametrize("doc", ["methodology.md", "architecture.md"])
def test_docs_exist(doc):
    assert (ROOT / "docs" / doc).read_text(encoding="utf-8").strip()


def test_nothing_points_outside_the_repository():
    offenders = []
    for path in _files([ROOT]):
        text = _text(path)
        if text is None:
            continue
        offenders += [f"{path.relative_to(ROOT)}: {s!r}" for s in FORBIDDEN if s in text]
    assert not offenders, "references to files outside the repository:\n" + "\n".join(offenders)

"""The docs stay true to the code: every setting documented, links that resolve, a short README,
and no development history (that is git's job)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from core.settings import settings_table

pytestmark = pytest.mark.fast

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_readme_is_short():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 250


def test_every_setting_is_in_the_operations_doc():
    text = (ROOT / "docs" / "operations.md").read_text()
    missing = [name for name, _value, _meaning in settings_table() if f"`{name}`" not in text]
    assert missing == [], "run `pixel config --markdown` and update docs/operations.md"


def test_every_setting_says_what_it_does():
    assert [name for name, _value, meaning in settings_table() if not meaning] == []


def test_relative_links_resolve():
    broken = []
    for doc in DOCS:
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", doc.read_text()):
            if not (doc.parent / target).exists():
                broken.append(f"{doc.relative_to(ROOT)} -> {target}")
    assert broken == []


def test_no_development_history_in_docs_or_code():
    files = subprocess.run(
        ["git", "ls-files", "*.py", "*.md", "*.sh", "*.cfg", "*.toml", "*.yml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    pattern = re.compile(r"\bsessions? \d+\b|what changed in|previous code|earlier box", re.IGNORECASE)
    found = [
        f"{name}:{n}"
        for name in files
        if name != "tests/test_docs.py"
        for n, line in enumerate((ROOT / name).read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert found == []

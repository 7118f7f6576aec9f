"""The packages' imports point one way: events (pure rules) <- core (settings, Kafka clients, logs,
processes, the data lake) <- infra (engines) <- the services <- pixel (CLI, supervisor, demo).
Services don't import each other, and nothing in the product imports the roof."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.fast

ROOT = Path(__file__).resolve().parents[1]
LAYERS = [
    {"events"},
    {"core"},
    {"infra"},
    {"pixel_api", "speed_layer", "batch_layer", "serving"},
    {"pixel"},
]
LEVEL = {package: level for level, group in enumerate(LAYERS) for package in group}


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, top-level package) of every import in a file, function-local ones included."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module.split(".")[0]))
    return found


def violations() -> list[str]:
    bad = []
    for package, level in LEVEL.items():
        for path in sorted((ROOT / package).rglob("*.py")):
            for line, imported in imports(path):
                if imported not in LEVEL or imported == package:
                    continue
                if LEVEL[imported] >= level:
                    bad.append(
                        f"{path.relative_to(ROOT)}:{line} ({package}, layer {level}) imports "
                        f"{imported} (layer {LEVEL[imported]})"
                    )
    return bad


def test_every_import_points_down_a_layer():
    assert violations() == []


def test_the_check_sees_an_upward_import(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    from pixel.cli import app\n")
    assert imports(sample) == [(2, "pixel")]


def test_events_does_no_io():
    """events/ is pure: no network, files, processes or engines."""
    forbidden = {
        "socket",
        "subprocess",
        "confluent_kafka",
        "pyspark",
        "pyflink",
        "httpx",
        "hdfs",
        "duckdb",
        "shutil",
        "core",
        "infra",
    }
    found = [
        f"{path.relative_to(ROOT)}:{line} imports {name}"
        for path in sorted((ROOT / "events").rglob("*.py"))
        for line, name in imports(path)
        if name in forbidden
    ]
    assert found == []

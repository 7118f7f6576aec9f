"""The serving app against its own OpenAPI document: schemathesis (PyPI) with every check, over
every endpoint, once for a public site and once for a private one with its token, on a running
server; zero failures. Rules across a query's fields the schema can't state are 400s by design
(tests/serving/schemathesis.toml says which)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.slow
CONFIG = Path(__file__).with_name("schemathesis.toml")


def test_the_document_lists_every_status_and_no_422(server):
    base, _ = server
    spec = httpx.get(f"{base}/openapi.json").json()
    for path, operations in spec["paths"].items():
        for operation in operations.values():
            assert "422" not in operation["responses"], path
            if path.startswith(("/api/v1/stats", "/api/v2")):
                assert {"200", "400", "401", "429", "503"} <= set(operation["responses"]), path
    # A parameter of the wrong type is a 400 that names it, as every other refused parameter.
    r = httpx.get(
        f"{base}/api/v1/stats/breakdown", params={"site_id": "a.example", "property": "event:page", "limit": "x"}
    )
    assert r.status_code == 400 and "limit" in r.json()["error"]


@pytest.mark.parametrize("site", ["a.example", "b.example"], ids=["public site", "private site with its token"])
def test_schemathesis_finds_nothing(server, tmp_path, site):
    base, token = server
    # The document's examples name example.com: here they name the site under test.
    spec = httpx.get(f"{base}/openapi.json").text.replace('"example.com"', json.dumps(site))
    (tmp_path / "openapi.json").write_text(spec)
    command = [
        sys.executable, "-m", "schemathesis.cli", "--config-file", str(CONFIG), "run", str(tmp_path / "openapi.json"),
        "--url", base, "--checks", "all", "--max-examples", "25", "--seed", "20261204",
        "--generation-deterministic",
    ]  # fmt: skip
    if site == "b.example":
        command += ["--header", f"Authorization: Bearer {token}"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert "No issues found" in done.stdout, done.stdout[-3000:]

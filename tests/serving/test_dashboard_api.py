"""The dashboard's own endpoints without a browser: its configuration, the map files, the view as
a v2 query and as CSV files (formula cells escaped), the realtime view, and access to them."""

from __future__ import annotations

import io
import zipfile

import httpx
import pytest

from serving.dashboard.export import csv_bytes, safe_cell
from serving.dashboard.panels import PANELS, PROPS_TAB, TABS
from tests.serving.conftest import D1, D2

pytestmark = pytest.mark.fast


@pytest.mark.parametrize(
    ("cell", "kept"),
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+1", "'+1"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("/pricing", "/pricing"),
        (-12, -12),  # a number is a number
        (None, ""),
    ],
)
def test_cells_a_spreadsheet_would_compute_are_escaped(cell, kept):
    assert safe_cell(cell) == kept


def test_csv_quotes_what_it_must():
    assert csv_bytes(["page", "visitors"], [['/a,"b"', 3], ["=1", None]]) == b'page,visitors\n"/a,""b""",3\n\'=1,\n'


def test_config_map_query_export_and_realtime(server):
    base, token = server
    config = httpx.get(f"{base}/api/config").json()
    assert [p["id"] for p in config["panels"]] == [p.id for p in PANELS] and config["topline"][0] == "visitors"
    topology = httpx.get(f"{base}/map/countries-110m.json")
    assert topology.status_code == 200 and topology.json()["type"] == "Topology"
    assert httpx.get(f"{base}/map/..%2F..%2Fsetup.cfg").status_code == 404
    assert httpx.get(f"{base}/map/DBIP-LICENSE").status_code == 404  # only the map's files

    view = {"period": "custom", "date": f"{D1},{D2}", "filters": "visit:browser==Chrome;event:page==/docs"}
    query = httpx.get(f"{base}/api/sites/a.example/query", params=view).json()
    assert query["filters"] == [["is", "visit:browser", ["Chrome"]], ["is", "event:page", ["/docs"]]]
    answer = httpx.post(f"{base}/api/v2/query", json=query)
    assert answer.status_code == 200, answer.text
    bad = httpx.get(f"{base}/api/sites/a.example/query", params={**view, "filters": "nope==1"})
    assert bad.status_code == 400 and "unknown property" in bad.json()["error"]

    export = httpx.get(f"{base}/api/sites/a.example/export", params=view)
    assert export.status_code == 200
    assert export.headers["content-disposition"] == f'attachment; filename="a.example-custom-{D1}_{D2}.zip"'
    names = zipfile.ZipFile(io.BytesIO(export.content)).namelist()
    assert names == ["visitors.csv", *(f"{t.file}.csv" for t in TABS if t.property != PROPS_TAB)]  # no properties
    unfiltered = httpx.get(f"{base}/api/sites/a.example/export", params={"period": "custom", "date": f"{D1},{D2}"})
    props = [f"{t.file}/plan.csv" if t.property == PROPS_TAB else f"{t.file}.csv" for t in TABS]  # its one key
    assert zipfile.ZipFile(io.BytesIO(unfiltered.content)).namelist() == ["visitors.csv", *props]
    keys = httpx.get(f"{base}/api/sites/a.example/props", params={"period": "custom", "date": f"{D1},{D2}"})
    assert keys.json() == {"results": [{"key": "plan", "events": 1}]}
    assert httpx.get(f"{base}/api/sites/b.example/props").status_code == 401
    assert httpx.get(f"{base}/api/sites/b.example/export").status_code == 401
    assert httpx.get(f"{base}/api/sites/b.example/realtime").status_code == 401
    realtime = httpx.get(f"{base}/api/sites/b.example/realtime", headers={"Authorization": f"Bearer {token}"})
    assert realtime.status_code == 200 and realtime.json()["minutes"] == 30 and len(realtime.json()["series"]) == 30

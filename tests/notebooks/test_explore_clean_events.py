"""The data-science notebook, executed top to bottom (nbclient, a real kernel) over a day the real
batch job closed: it must run without errors and report what the job wrote."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from batch_layer.job import run_day
from core.lake.storage import FileStorage
from pixel.demo import TrafficModel, history, write_history
from tests.harness import make_settings

pytestmark = pytest.mark.slow
NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "explore_clean_events.ipynb"


def test_notebook_explores_a_closed_day(spark, tmp_path, monkeypatch):
    settings = make_settings(tmp_path / "data")
    day = dt.date(2026, 11, 20)
    write_history(FileStorage(settings.data_dir), history(TrafficModel(sites=3, seed=7, visitors=400), day, 3000))
    summary = run_day(spark, settings, day)
    assert summary.clean > 2000

    monkeypatch.setenv("PIXEL_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("PIXEL_NOTEBOOK_DAY", str(day))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()

    last = notebook.cells[-1]["outputs"]
    report = json.loads("".join(o.get("text", "") for o in last if o["output_type"] == "stream"))
    assert report["day"] == str(day) and report["events"] == summary.clean
    assert sum(report["sites"].values()) == summary.clean and len(report["sites"]) == summary.sites
    assert 0 < report["visits"] <= summary.clean

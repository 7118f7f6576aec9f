"""Each closed day's batch rows into Druid, replacing that day's real-time segments.

The Kafka supervisor (infra/druid/pixel-agg-supervisor.json) fills the datasource with the speed
layer's rows (events.aggregate: one per minute, site and combination of property values). After
the nightly job publishes day D, the serving process cuts D's clean events into visits as it
does for the embedded store (serving.store.loader: each hit with its visit, visitor, the visit's
length, duration, entry and exit page) and writes them to the lake (druid/hits/date=D); an
``index_parallel`` task reads them from HDFS into the same datasource, over the interval [D, D+1)
with ``dropExisting``: Druid marks the interval's earlier segments (the speed rows, handed off by
the supervisor) unused, so D is then answered from the corrected, deduplicated events, bots out.
The dimensions are the supervisor spec's plus the visit's (VISIT_DIMENSIONS); the metrics are
built from the hits (a count, a count of pageviews, an HLL sketch of the visitors), under the
supervisor's metric names. serving.druid.sql groups them per visit.

``day_task`` builds the task; ``Overlord`` submits it and follows it (the Tasks API:
POST /druid/indexer/v1/task, GET /druid/indexer/v1/task/{id}/status).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import time
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pyarrow as pa
import pyarrow.parquet as pq

from core.lake import layout
from core.lake.storage import Storage

SUPERVISOR_SPEC = Path(__file__).resolve().parents[2] / "infra" / "druid" / "pixel-agg-supervisor.json"
HDFS_RPC_PORT = 8020  # the NameNode's RPC port: what Druid's HDFS input source speaks


# The batch rows' dimensions beyond the speed rows': the visit's pages, and its numbers (longs).
VISIT_STRINGS = ["entry_page", "exit_page", "props"]  # props: the hit's own (closed days only)
VISIT_LONGS = ["visit", "visitor", "visit_hits", "visit_duration_ms"]


class DruidTaskFailed(RuntimeError):
    """An ingestion task ended in FAILED (or could not be submitted): the message says why."""


def supervisor_schema() -> dict:
    return json.loads(SUPERVISOR_SPEC.read_text())["spec"]["dataSchema"]


def hdfs_input_root(storage_root: str, override: str = "") -> str:
    """The lake's root as Druid's HDFS input source reads it (hdfs://namenode:8020/path): the
    storage URL names WebHDFS (:9870), Druid speaks the NameNode's RPC port."""
    if override:
        return override.rstrip("/")
    parsed = urlparse(storage_root)
    if parsed.scheme != "hdfs":
        raise ValueError(f"Druid reads the lake from HDFS; the storage root is {storage_root!r}")
    return f"hdfs://{parsed.hostname}:{HDFS_RPC_PORT}{parsed.path.rstrip('/')}"


def _replacing_task(
    interval: str, data_schema: dict, input_io: dict, max_subtasks: int, context: dict | None = None
) -> dict:
    """An index_parallel task that replaces the datasource's segments over ``interval`` (the
    dimensions: the supervisor's, then the visit's; segments by day) with what ``input_io`` reads."""
    schema = supervisor_schema()
    return {
        "type": "index_parallel",
        "spec": {
            "dataSchema": {
                "dataSource": schema["dataSource"],
                "dimensionsSpec": {
                    "dimensions": [
                        *schema["dimensionsSpec"]["dimensions"],
                        *VISIT_STRINGS,
                        *({"type": "long", "name": name} for name in VISIT_LONGS),
                    ]
                },
                **data_schema,
                "granularitySpec": {
                    "type": "uniform",
                    "segmentGranularity": "DAY",
                    "queryGranularity": schema["granularitySpec"]["queryGranularity"],
                    "rollup": True,
                    "intervals": [interval],
                },
            },
            "ioConfig": {"type": "index_parallel", **input_io, "appendToExisting": False, "dropExisting": True},
            "tuningConfig": {
                "type": "index_parallel",
                "maxNumConcurrentSubTasks": max_subtasks,
                "forceGuaranteedRollup": False,
            },
        },
        "context": {"taskLockType": "REPLACE", **(context or {})},
    }


def day_task(day: dt.date, input_root: str, max_subtasks: int = 2) -> dict:
    """The index_parallel task that makes ``day``'s hits (layout.druid_hits_file) the day's rows."""
    hll = next(m for m in supervisor_schema()["metricsSpec"] if m["name"] == "visitors_hll")
    return _replacing_task(
        f"{day}T00:00:00Z/{day + dt.timedelta(days=1)}T00:00:00Z",
        {
            "timestampSpec": {"column": "ts", "format": "millis"},
            # The clean data has no bots.
            "transformSpec": {"transforms": [{"type": "expression", "name": "is_bot", "expression": "'false'"}]},
            "metricsSpec": [
                {"type": "count", "name": "events"},
                {
                    "type": "filtered",
                    "filter": {"type": "selector", "dimension": "event", "value": "pageview"},
                    "aggregator": {"type": "count", "name": "pageviews"},
                    "name": "pageviews",
                },
                {
                    "type": "HLLSketchBuild",
                    "name": "visitors_hll",
                    "fieldName": "visitor",
                    "lgK": hll["lgK"],
                    "tgtHllType": hll["tgtHllType"],
                },
            ],
        },
        {
            "inputSource": {"type": "hdfs", "paths": f"{input_root}/{layout.druid_hits_file(day)}"},
            "inputFormat": {"type": "parquet", "binaryAsString": True},
        },
        max_subtasks,
    )


# The first day a purge reindexes from: before any traffic the platform can hold.
PURGE_FROM = dt.date(2000, 1, 1)


def purge_task(site: str, before_ms: int, max_subtasks: int = 2) -> dict:
    """The index_parallel task that rewrites the datasource without the site's rows before
    ``before_ms`` (a purge): Druid reads its own segments (the druid input source) through a
    filter, over every day up to the purge's, and replaces them. Rows are re-rolled with the
    supervisor's combining metrics, which the batch rows' columns answer too."""
    schema = supervisor_schema()
    end = dt.datetime.fromtimestamp(before_ms / 1000, dt.UTC).date() + dt.timedelta(days=1)
    interval = f"{PURGE_FROM}T00:00:00Z/{end}T00:00:00Z"
    site_before = {
        "type": "and",
        "fields": [
            {"type": "selector", "dimension": "site", "value": site},
            {
                "type": "bound",
                "dimension": "__time",
                "upper": str(before_ms),
                "upperStrict": True,
                "ordering": "numeric",
            },
        ],
    }
    return _replacing_task(
        interval,
        {
            "timestampSpec": {"column": "__time", "format": "millis"},
            "transformSpec": {"filter": {"type": "not", "field": site_before}},
            "metricsSpec": schema["metricsSpec"],
        },
        {"inputSource": {"type": "druid", "dataSource": schema["dataSource"], "interval": interval}},
        max_subtasks,
        # The supervisor keeps appending to today's segments while this replaces them.
        {"useConcurrentLocks": True},
    )


class Overlord:
    """The Druid Overlord's Tasks API."""

    def __init__(self, url: str, timeout_s: float = 10.0, client: httpx.Client | None = None):
        self.url = url.rstrip("/")
        self.client = client or httpx.Client(timeout=timeout_s)

    def submit(self, task: dict) -> str:
        try:
            response = self.client.post(f"{self.url}/druid/indexer/v1/task", json=task)
        except httpx.HTTPError as exc:
            raise DruidTaskFailed(f"the Overlord at {self.url} did not answer: {exc}") from exc
        if response.status_code != 200:
            raise DruidTaskFailed(f"the Overlord refused the task ({response.status_code}): {response.text[:500]}")
        return response.json()["task"]

    def status(self, task_id: str) -> tuple[str, str | None]:
        """(RUNNING | SUCCESS | FAILED | WAITING | PENDING, the error message if any)."""
        response = self.client.get(f"{self.url}/druid/indexer/v1/task/{task_id}/status")
        response.raise_for_status()
        status = response.json()["status"]
        return status.get("statusCode") or status.get("status"), status.get("errorMsg")

    def run(self, task: dict, poll_s: float = 5.0, timeout_s: float = 3600.0) -> str:
        """Submit and wait for the task to end; its id, or DruidTaskFailed."""
        task_id = self.submit(task)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                state, error = self.status(task_id)
            except httpx.HTTPError:
                state, error = "UNKNOWN", None  # the Overlord restarting: ask again
            if state == "SUCCESS":
                return task_id
            if state == "FAILED":
                raise DruidTaskFailed(f"task {task_id} failed: {error or 'no message (see the task log)'}")
            time.sleep(poll_s)
        raise DruidTaskFailed(f"task {task_id} did not end within {timeout_s:.0f} s")


class DruidDays:
    """The closed days' store on Druid, for serving.store.sync.LakeSync: which days Druid holds as
    batch rows (a small JSON file: day -> run), and loading one more (its hits to the lake, then
    the ingestion task)."""

    def __init__(self, overlord: Overlord, storage: Storage, input_root: str, state: Path, poll_s: float = 5.0):
        self.overlord = overlord
        self.storage = storage
        self.input_root = input_root
        self.state = state
        self.poll_s = poll_s

    def loaded(self) -> dict[dt.date, str]:
        if not self.state.exists():
            return {}
        return {dt.date.fromisoformat(day): run for day, run in json.loads(self.state.read_text()).items()}

    def site_events(self) -> dict[str, int]:
        return {}  # Druid plans its queries itself

    def delete_site(self, site: str, before_ms: int) -> str:
        """Erase the site's rows before ``before_ms``, batch and real-time: the reindex task's id."""
        return self.overlord.run(purge_task(site, before_ms), poll_s=self.poll_s)

    def replace_day(self, day: dt.date, hits: pa.Table, run: str) -> str:
        """Ingest ``hits`` as the day's batch rows; the task's id, or DruidTaskFailed."""
        buffer = io.BytesIO()
        pq.write_table(hits, buffer, compression="zstd")
        self.storage.write_atomic(layout.druid_hits_file(day), buffer.getvalue())
        task_id = self.overlord.run(day_task(day, self.input_root), poll_s=self.poll_s)
        done = {str(d): r for d, r in self.loaded().items()} | {str(day): run}
        self.state.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state.with_suffix(".tmp")
        tmp.write_text(json.dumps(done, indent=1, sort_keys=True))
        tmp.replace(self.state)
        return task_id

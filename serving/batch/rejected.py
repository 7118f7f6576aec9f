"""What the nightly job filtered out of a site's traffic (views/rejected/date=D/: per site,
reason and bot family, the events and a few samples), over a range of closed days, for
GET /api/v1/stats/rejected and the dashboard's "Filtered out" panel."""

from __future__ import annotations

import datetime as dt
import io
import json

import pyarrow.compute as pc
import pyarrow.parquet as pq

from core.lake import layout
from core.lake.storage import Storage

SAMPLES = 3


def rejected(storage: Storage, site: str, first: dt.date, last: dt.date) -> list[dict]:
    """Per reason (and bot family), the site's rejected events over the closed days [first, last]
    the lake holds, most first, with up to SAMPLES samples each."""
    found: dict[tuple[str, str], dict] = {}
    folder = f"{layout.VIEWS}/{layout.REJECTED_VIEW}"
    for day in layout.days_of(storage.list_dirs(folder)):
        if not first <= day <= last:
            continue
        for path in storage.list_files(layout.view_dir(layout.REJECTED_VIEW, day)):
            if not path.endswith(".parquet"):
                continue
            table = pq.read_table(io.BytesIO(storage.read(path)), filters=pc.field("site") == site)
            for row in table.to_pylist():
                entry = found.setdefault(
                    (row["reason"], row["family"]),
                    {"reason": row["reason"], "family": row["family"], "events": 0, "samples": []},
                )
                entry["events"] += row["events"]
                room = SAMPLES - len(entry["samples"])
                entry["samples"] += [json.loads(s) for s in row["samples"][:room]]
    return sorted(found.values(), key=lambda e: (-e["events"], e["reason"], e["family"]))

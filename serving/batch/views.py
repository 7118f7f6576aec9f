"""Read the nightly job's views (``views/daily/date=D/``, ``views/sessions/date=D/``) through the
storage interface, so file:// and hdfs:// roots read the same way, without Spark."""
from __future__ import annotations

import datetime as dt
import io

import pyarrow as pa
import pyarrow.parquet as pq

from batch_layer.storage import Storage
from batch_layer.watermark import read_watermark
from serving.realtime.interface import Count


class BatchViews:
    def __init__(self, storage: Storage):
        self.storage = storage

    def watermark(self) -> dt.date | None:
        return read_watermark(self.storage)

    def table(self, view: str, day: dt.date) -> pa.Table | None:
        """One day of a view (``daily`` or ``sessions``); None when the day was never closed."""
        parts = [p for p in self.storage.list_files(f"views/{view}/date={day}") if p.endswith(".parquet")]
        if not parts:
            return None
        return pa.concat_tables(pq.read_table(io.BytesIO(self.storage.read(p))) for p in parts)

    def site_totals(self, day: dt.date) -> dict[str, Count]:
        """Per site: pageviews, exact visitors and the visitors sketch of the day (humans only)."""
        table = self.table("daily", day)
        if table is None:
            return {}
        rows = table.filter(pa.compute.equal(table["dimension"], "total")).to_pylist()
        return {r["site"]: Count(r["pageviews"], r["visitors"], r["visitors_hll"]) for r in rows}

"""The closed days on Druid: the batch rows each nightly run put in the datasource, queried with
Druid SQL (serving.druid.sql), for serving.analytics.engine."""

from __future__ import annotations

import datetime as dt

from events.sketches import RELATIVE_ERROR
from serving.analytics.query import Query
from serving.druid.sql import compile_closed, compile_prop_keys


class DruidClosed:
    # Druid's HLL estimate (lgK 12): ~95% of answers within two standard errors.
    visitors_error = f"±{2 * RELATIVE_ERROR:.1%} (95%)"

    def __init__(self, druid):
        """``druid``: a serving.realtime.druid_store.DruidStore (its connection runs the SQL)."""
        self.druid = druid

    def rows(self, query: Query, first: dt.date, last: dt.date, paginate: bool = True) -> list[tuple]:
        """Per group: its dimension values, metric values, and the number of groups."""
        sql, count_sql, params = compile_closed(query, first, last, paginate)
        rows = self.druid.run(sql, params)
        if not rows and not query.dimensions:
            rows = [(0,) * len(query.metrics)]  # Druid may answer an empty range with no row
        total = self.druid.run(count_sql, params)[0][0] if count_sql else len(rows)
        return [(*row, total) for row in rows]

    def prop_keys(self, query: Query, first: dt.date, last: dt.date, limit: int) -> list[tuple[str, int]]:
        """The custom property keys over the closed days [first, last], with their events."""
        sql, params = compile_prop_keys(query, first, last, limit)
        return [(key, int(events)) for key, events in self.druid.run(sql, params)]

"""The closed days on the embedded store (serving.store.embedded), for serving.analytics.engine:
from the hits, or from the per-day rollups where they can answer and the site is big enough for
them to pay."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from serving.analytics.query import Query
from serving.analytics.sql import compile_prop_keys, compile_query, compile_rollup, uses_rollup
from serving.store.embedded import EmbeddedStore

ROLLUP_MIN_EVENTS = 100_000  # a site with fewer events in the store is answered from its hits


class EmbeddedClosed:
    visitors_error = None  # exact: distinct visitor numbers

    def __init__(
        self,
        store: EmbeddedStore,
        timeout_s: float = 5.0,
        rollups: bool = True,
        site_events: Callable[[], dict[str, int]] | None = None,
    ):
        self.store = store
        self.timeout_s = timeout_s
        self.rollups = rollups  # answer what they can from the per-day rollups (off: always from the hits)
        self.site_events = site_events  # events per site, to choose the path (None: rollups wherever they can)

    def rows(self, query: Query, first: dt.date, last: dt.date, paginate: bool = True) -> list[tuple]:
        """Per group: its dimension values, metric values, and the number of groups."""
        compile_ = compile_rollup if self._rollup_pays(query) else compile_query
        sql, params = compile_(query, first, last, paginate=paginate)
        return self.store.query(sql, params, self.timeout_s)

    def prop_keys(self, query: Query, first: dt.date, last: dt.date, limit: int) -> list[tuple[str, int]]:
        """The custom property keys over the closed days [first, last], with their events."""
        sql, params = compile_prop_keys(query, first, last, limit)
        return self.store.query(sql, params, self.timeout_s)

    def _rollup_pays(self, query: Query) -> bool:
        """Rollups for the sites whose hits are many: a small site's few hits are cheaper to read
        than rollup rows that share their row groups with every other site's."""
        if not (self.rollups and uses_rollup(query, query.dimensions)):
            return False
        return self.site_events is None or self.site_events().get(query.site, 0) >= ROLLUP_MIN_EVENTS

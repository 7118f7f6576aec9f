"""``views/_watermark``: the last day the batch layer has closed. Serving answers days up to it
from the batch views (exact) and later time from the real-time store."""

from __future__ import annotations

import datetime as dt
import json

from core.lake import layout
from core.lake.storage import Storage


def read_watermark(storage: Storage) -> dt.date | None:
    if not storage.exists(layout.WATERMARK):
        return None
    return dt.date.fromisoformat(json.loads(storage.read(layout.WATERMARK))["date"])


def advance_watermark(storage: Storage, day: dt.date) -> None:
    """Move the watermark to ``day`` (one atomic write); re-running an older day never moves it back."""
    current = read_watermark(storage)
    if current is not None and current >= day:
        return
    body = {"date": day.isoformat(), "updated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    storage.write_atomic(layout.WATERMARK, json.dumps(body).encode())

"""One log format for every service, tagged with the service name (several share a terminal)."""

from __future__ import annotations

import logging
import os


def setup_logging(service: str) -> None:
    level = os.environ.get("PIXEL_LOG_LEVEL", "INFO").upper()
    logging.basicConfig(
        level=level,
        format=f"%(asctime)s %(levelname)-7s [{service}] %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        force=True,
    )
    logging.getLogger("librdkafka").addFilter(RepeatFilter())
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per demo request is noise
    logging.getLogger("apache_beam").setLevel(logging.WARNING)  # PyFlink's worker imports Beam
    logging.getLogger("py4j").setLevel(logging.WARNING)  # PySpark's gateway logs every connection


class RepeatFilter(logging.Filter):
    """Drop a message identical to one logged in the last `window` seconds: librdkafka repeats
    'connection refused' dozens of times a second while a broker is down."""

    def __init__(self, window: float = 10.0):
        super().__init__()
        self.window = window
        self.seen: dict[str, float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        import time

        msg = record.getMessage()
        now = time.monotonic()
        if now - self.seen.get(msg, -1e9) < self.window:
            return False
        if len(self.seen) > 1000:
            self.seen.clear()
        self.seen[msg] = now
        return True

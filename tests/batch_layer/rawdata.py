"""Build raw datasets for batch tests: files exactly where and as the lander writes them."""

from __future__ import annotations

import datetime as dt
import gzip
from pathlib import Path

import orjson

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Mobile/15E148 Safari/604.1"
)
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
CURL = "curl/8.5.0"


def ms(day: dt.date, hh: int, mm: int = 0, ss: int = 0) -> int:
    return int(dt.datetime(day.year, day.month, day.day, hh, mm, ss, tzinfo=dt.UTC).timestamp() * 1000)


def event(
    event_id: str,
    ts: int,
    site: str,
    path: str = "/",
    *,
    visitor: str = "v1",
    ua: str = CHROME,
    referrer: str = "",
    eid: str = "",
    **extra,
) -> dict:
    return {
        "v": 1,
        "event_id": event_id,
        "ts": ts,
        "site": site,
        "event": "pageview",
        "url": f"https://{site}{path}",
        "referrer": referrer,
        "ua": ua,
        "ip_trunc": "198.51.100.0",
        "visitor_id": visitor,
        "uid": "",
        "eid": eid,
        "lang": "en",
        "dnt": False,
        "src": "pixel",
        **extra,
    }


class RawDataset:
    """raw/date=D/hour=HH/<name>.jsonl.gz files under a data dir."""

    def __init__(self, root: Path):
        self.root = root
        self.seq = 0

    def write(self, day: dt.date, hour: int, lines: list[dict | bytes]) -> Path:
        self.seq += 1
        folder = self.root / "raw" / f"date={day}" / f"hour={hour:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"0-{self.seq * 1000}-{self.seq * 1000 + len(lines) - 1}.jsonl.gz"
        body = b"\n".join(line if isinstance(line, bytes) else orjson.dumps(line) for line in lines) + b"\n"
        path.write_bytes(gzip.compress(body, mtime=0))
        return path

"""The daily secret salt for visitor ids, kept on disk so every worker and restart agrees.

A new random salt is made for each UTC day; salts older than yesterday are deleted, so nobody
(including us) can recompute yesterday-but-one's visitor ids from an IP and UA.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
from pathlib import Path

KEEP_DAYS = 2  # today and yesterday: late hits right after midnight still match their visitors


class DailySalt:
    def __init__(self, directory: Path):
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        os.chmod(directory, 0o700)
        self._day = -1
        self._salt = b""

    def for_ms(self, ts_ms: int) -> bytes:
        day = ts_ms // 86_400_000
        if day != self._day:  # once per day per worker; the hot path is a comparison
            self._salt = self._load_or_create(day)
            self._day = day
        return self._salt

    def _load_or_create(self, day: int) -> bytes:
        name = dt.date.fromordinal(dt.date(1970, 1, 1).toordinal() + day).isoformat()
        path = self.directory / f"salt-{name}"
        try:
            # O_EXCL: when several workers race at midnight, exactly one salt wins.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            salt = path.read_bytes()
            if len(salt) == 32:
                return salt
            # A writer died between create and write (or is writing right now): wait for it.
            for _ in range(100):
                salt = path.read_bytes()
                if len(salt) == 32:
                    return salt
                os.sched_yield()
            raise RuntimeError(f"salt file {path} is corrupt; delete it to start a new salt") from None
        with os.fdopen(fd, "wb") as fh:
            fh.write(secrets.token_bytes(32))
            fh.flush()
            os.fsync(fh.fileno())
        self._purge_older_than(day)
        return path.read_bytes()

    def _purge_older_than(self, day: int) -> None:
        oldest_kept = dt.date.fromordinal(dt.date(1970, 1, 1).toordinal() + day - KEEP_DAYS + 1)
        for old in self.directory.glob("salt-*"):
            try:
                if dt.date.fromisoformat(old.name[5:]) < oldest_kept:
                    old.unlink(missing_ok=True)
            except ValueError:
                continue

"""Append-only disk spool for hits the broker can't take right now.

Segments are files of length+CRC framed records, fsynced in batches. A segment being written is
flock'ed by its writer; any process may replay (and then delete) a segment it can lock, so a
crashed worker's spool is replayed by whoever starts next. A replay cursor is saved after each
confirmed chunk, so a crash mid-replay re-sends at most one chunk (event_id dedupes those).
A torn record at a segment's tail (power cut before fsync) is detected by its CRC and skipped.
"""

from __future__ import annotations

import fcntl
import os
import struct
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

HEADER = struct.Struct("<II")  # body length, crc32(body)
SUFFIX = ".spool"
MAX_RECORD = 1 << 20  # a length above this can only be a torn/corrupt header

Record = tuple[str, bytes, bytes]  # topic, key, value


def _encode(topic: str, key: bytes, value: bytes) -> bytes:
    body = topic.encode() + b"\0" + key.replace(b"\0", b"") + b"\0" + value
    return HEADER.pack(len(body), zlib.crc32(body)) + body


class Spool:
    def __init__(self, directory: Path, fsync_interval_s: float = 0.2):
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.fsync_interval_s = fsync_interval_s
        self._fh = None
        self._path: Path | None = None
        self._dirty = False
        self._last_sync = 0.0
        self.appended = 0

    # --- writing -------------------------------------------------------------------------------
    def append(self, records: list[Record], name_hint_ns: int | None = None) -> None:
        if not records:
            return
        if self._fh is None:
            self._open_segment(name_hint_ns)
        self._fh.write(b"".join(_encode(t, k, v) for t, k, v in records))
        # One write() per batch: a crashed process loses nothing spooled; fsync (power loss)
        # is batched by maybe_fsync.
        self._fh.flush()
        self._dirty = True
        self.appended += len(records)

    def write_segment(self, records: list[Record], name_hint_ns: int) -> Path:
        """Write a complete, synced segment at once (used to re-queue events for resending)."""
        path = self.directory / f"{name_hint_ns:020d}-{os.getpid()}-r{SUFFIX}"
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as fh:
            fh.write(b"".join(_encode(t, k, v) for t, k, v in records))
            fh.flush()
            os.fsync(fh.fileno())
        tmp.rename(path)
        self._sync_dir()
        self.appended += len(records)
        return path

    def _open_segment(self, name_hint_ns: int | None) -> None:
        stamp = name_hint_ns if name_hint_ns is not None else time.time_ns()
        self._path = self.directory / f"{stamp:020d}-{os.getpid()}{SUFFIX}"
        self._fh = open(self._path, "ab")
        fcntl.flock(self._fh, fcntl.LOCK_EX)
        self._sync_dir()

    def maybe_fsync(self, force: bool = False) -> None:
        if not self._dirty:
            return
        now = time.monotonic()
        if force or now - self._last_sync >= self.fsync_interval_s:
            os.fsync(self._fh.fileno())
            self._dirty = False
            self._last_sync = now

    def seal(self) -> None:
        """Sync and close the open segment, making it replayable."""
        if self._fh is None:
            return
        self.maybe_fsync(force=True)
        fcntl.flock(self._fh, fcntl.LOCK_UN)
        self._fh.close()
        self._fh = None
        self._path = None

    @property
    def writing(self) -> bool:
        return self._fh is not None

    def _sync_dir(self) -> None:
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    # --- replaying -----------------------------------------------------------------------------
    def segments(self) -> list[Path]:
        """All segments on disk, oldest first (names start with a nanosecond timestamp)."""
        return sorted(self.directory.glob(f"*{SUFFIX}"))

    def pending_bytes(self) -> int:
        total = 0
        for seg in self.segments():
            try:
                total += seg.stat().st_size - _read_cursor(seg)
            except FileNotFoundError:
                continue
        return total

    def claim(self, path: Path):
        """Lock a segment for replay; None if its writer (or another replayer) holds it."""
        try:
            fh = open(path, "rb")
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            return None
        if not path.exists():  # replayed and deleted between our glob and our lock
            fh.close()
            return None
        return fh

    @staticmethod
    def read(fh, max_records: int) -> tuple[list[Record], int]:
        """Read up to max_records from the cursor; returns them and the new cursor position."""
        pos = _read_cursor(Path(fh.name))
        out: list[Record] = []
        for record, after in _records(fh, pos):
            pos = after
            if record is None:  # torn tail: pos skips past it
                break
            out.append(record)
            if len(out) == max_records:
                break
        return out, pos

    @staticmethod
    def advance(fh, pos: int) -> None:
        cursor = Path(fh.name + ".cursor")
        tmp = cursor.with_suffix(".tmp")
        tmp.write_text(str(pos))
        os.replace(tmp, cursor)

    @staticmethod
    def finish(fh) -> None:
        """Delete a fully replayed segment (still holding its lock) and release it."""
        Path(fh.name).unlink(missing_ok=True)
        Path(fh.name + ".cursor").unlink(missing_ok=True)
        fh.close()

    @staticmethod
    def iter_all(directory: Path) -> Iterator[Record]:
        """Every record in every segment, ignoring cursors (for tests and inspection)."""
        for seg in sorted(directory.glob(f"*{SUFFIX}")):
            with open(seg, "rb") as fh:
                for record, _ in _records(fh, 0):
                    if record is None:
                        break
                    yield record


def _records(fh, pos: int) -> Iterator[tuple[Record | None, int]]:
    """Each good record from `pos` with the position after it. A torn record (power cut before
    fsync) ends the segment: it yields (None, file size), since nothing after it is readable."""
    fh.seek(pos)
    while True:
        header = fh.read(HEADER.size)
        if len(header) < HEADER.size:
            return
        length, crc = HEADER.unpack(header)
        body = fh.read(length) if length <= MAX_RECORD else b""
        if len(body) != length or zlib.crc32(body) != crc:
            yield None, os.fstat(fh.fileno()).st_size
            return
        topic, key, value = body.split(b"\0", 2)
        pos += HEADER.size + length
        yield (topic.decode(), key, value), pos


def _read_cursor(segment: Path) -> int:
    try:
        return int(Path(str(segment) + ".cursor").read_text() or 0)
    except (FileNotFoundError, ValueError):
        return 0

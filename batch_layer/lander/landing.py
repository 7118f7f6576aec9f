"""Pure landing logic: a partition's batch of messages -> raw files and bad rows. No I/O.

File names derive from offsets, so landing the same offsets again produces the same files with
the same bytes (gzip mtime fixed at 0): a re-landed batch overwrites itself, never duplicates.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass, field

import orjson

from core.lake import layout
from events.badrows import BadReason, make_bad_row
from events.raw import check_raw_message, is_tick


@dataclass
class Message:
    offset: int  # offset in the broker's log
    value: bytes | None
    timestamp_ms: int  # broker/producer timestamp: files bad rows, which may lack a usable ts


@dataclass
class LandedBatch:
    files: dict[str, bytes] = field(default_factory=dict)  # relative path -> gzip bytes
    bad_rows: list[dict] = field(default_factory=list)
    events: int = 0


def land_batch(
    messages: list[Message],
    *,
    partition: int,
    offset_base: int,
    is_raw_topic: bool,
    topic: str,
    now_ms: int,
) -> LandedBatch:
    """Group one partition's consecutive messages by the hour of their timestamp into files.

    Raw events are filed by their own server timestamp (``ts``); a message that isn't a valid
    raw event becomes a bad row instead. Bad-row messages are filed by their message timestamp.
    ``offset_base`` turns broker offsets into the lander's logical offsets (see lander_state).
    """
    out = LandedBatch()
    groups: dict[str, list[tuple[int, bytes]]] = {}
    for msg in messages:
        logical = offset_base + msg.offset
        if is_raw_topic:
            if is_tick(msg.value):  # a collector's event-time tick: for the speed layer only
                continue
            event, reason, detail = check_raw_message(msg.value, now_ms)
            if event is None:
                out.bad_rows.append(
                    make_bad_row(
                        reason,
                        msg.value or b"",
                        source="lander",
                        detail=detail,
                        now_ms=now_ms,
                        topic=topic,
                        partition=partition,
                        offset=msg.offset,
                    )
                )
                continue
            line = msg.value if b"\n" not in msg.value else orjson.dumps(event)
            directory = layout.hour_dir_of(layout.RAW, event["ts"])
        else:
            value = msg.value or b""
            try:
                orjson.loads(value)
                line = value.replace(b"\n", b" ")
            except orjson.JSONDecodeError:
                # A bad row that isn't even JSON (foreign producer): wrap it, keep the bytes.
                line = orjson.dumps(
                    make_bad_row(
                        BadReason.INVALID_JSON,
                        value,
                        source="lander",
                        now_ms=now_ms,
                        detail="bad-rows topic message is not JSON",
                        topic=topic,
                        partition=partition,
                        offset=msg.offset,
                    )
                )
            directory = layout.hour_dir_of(layout.BAD_RAW, msg.timestamp_ms)
        groups.setdefault(directory, []).append((logical, line))
        out.events += 1
    for directory, rows in groups.items():
        first, last = rows[0][0], rows[-1][0]
        body = b"\n".join(line for _o, line in rows) + b"\n"
        out.files[f"{directory}/{layout.landed_file_name(partition, first, last)}"] = gzip.compress(body, 6, mtime=0)
    return out

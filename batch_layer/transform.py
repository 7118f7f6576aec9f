"""The batch job's per-partition work, as pure pandas functions (no Spark, no I/O).

Spark's JSON reader parses the raw dataset with the explicit raw schema; each Arrow batch of its
output comes here through ``mapInPandas`` and leaves as clean columns (the events library's
rules, the same code the speed layer runs) plus, for rows that can't be used, a typed bad reason
and the payload to keep. Tests call these functions directly.
"""
from __future__ import annotations

import re
from collections.abc import Iterator

import orjson
import pandas as pd

from events.badrows import MAX_BAD_PAYLOAD_BYTES
from events.enrich import CLEAN_SCHEMA, enrich_frame
from events.raw import RAW_COLUMNS, RAW_SCHEMA, check_raw_frame, check_raw_message

CORRUPT = "_corrupt_record"  # Spark puts lines it couldn't parse with the schema here
FILE = "_file"  # the raw file a row came from

# What mapInPandas returns: the clean event, why it is bad (if it is) and what to keep of it.
BAD_COLUMNS: list[tuple[str, str]] = [
    ("bad_reason", "string"),
    ("bad_detail", "string"),
    ("payload", "string"),  # the raw line (bad rows only)
    ("file", "string"),  # the raw file the row came from
]
OUTPUT_SCHEMA: list[tuple[str, str]] = CLEAN_SCHEMA + BAD_COLUMNS
OUTPUT_COLUMNS = [name for name, _ in OUTPUT_SCHEMA]

_FILE_PLACE = re.compile(r"/date=(\d{4}-\d{2}-\d{2})/hour=(\d{2})/")


def file_place(path: str) -> tuple[str, int] | None:
    """(date, hour) of a raw file from its path (raw/date=YYYY-MM-DD/hour=HH/...)."""
    match = _FILE_PLACE.search(path)
    return (match.group(1), int(match.group(2))) if match else None


def enrich_raw(raw: pd.DataFrame, now_ms: int) -> pd.DataFrame:
    """Rows as Spark read them (RAW_SCHEMA columns, CORRUPT, FILE) -> OUTPUT_COLUMNS, in order.

    A line Spark couldn't parse with the schema is checked by the lander's own check
    (check_raw_message), which either names the fault or, when only an optional field had an
    unexpected type, hands back the event to use. Every other row is checked structurally by
    check_raw_frame and then enriched by the events library.
    """
    raw = raw.reset_index(drop=True)
    reason, detail = _structural_check(raw, now_ms)
    out = enrich_frame(raw)
    structural = reason.notna()
    out.loc[structural, "bad_reason"] = reason[structural]
    out.loc[structural, "bad_detail"] = detail[structural]
    bad = out["bad_reason"].notna()
    out["payload"] = None
    if bad.any():
        out.loc[bad, "payload"] = [_payload(raw, i) for i in raw.index[bad]]
    out["file"] = raw[FILE] if FILE in raw else None
    return out[OUTPUT_COLUMNS]


def enrich_batches(batches: Iterator[pd.DataFrame], now_ms: int) -> Iterator[pd.DataFrame]:
    """The mapInPandas function (bind now_ms with functools.partial)."""
    for raw in batches:
        yield enrich_raw(raw, now_ms)


def _structural_check(raw: pd.DataFrame, now_ms: int) -> tuple[pd.Series, pd.Series]:
    corrupt = raw[CORRUPT].notna() if CORRUPT in raw else pd.Series(False, index=raw.index)
    reason, detail = check_raw_frame(raw, now_ms)
    accepted: dict[int, dict] = {}
    for i in raw.index[corrupt]:
        event, why, what = check_raw_message(raw.at[i, CORRUPT].encode("utf-8", "surrogateescape"), now_ms)
        if event is None:
            reason[i], detail[i] = why.value, what
        else:  # valid where it matters; an optional field had a type the schema refused: use the event
            accepted[i] = event
            reason[i], detail[i] = None, None
    if accepted:
        rows = list(accepted)
        for name, typ in RAW_SCHEMA:
            column = raw[name].astype(object)
            column[rows] = [_as_schema_type(event.get(name), typ) for event in accepted.values()]
            raw[name] = column
    return reason, detail


def _as_schema_type(value, typ: str):
    """A parsed JSON value as the reader would have given it had its type fit the schema
    (non-string values of string fields as their JSON text, as Spark's and Flink's readers do)."""
    if value is None:
        return None
    if typ == "string":
        return value if isinstance(value, str) else orjson.dumps(value).decode()
    if typ == "boolean":
        return bool(value)
    return value if isinstance(value, int) and not isinstance(value, bool) else None  # long: v, ts


def _payload(raw: pd.DataFrame, i: int) -> str:
    """The bad row's payload: the line as landed when Spark kept it, else the parsed fields."""
    if CORRUPT in raw and isinstance(raw.at[i, CORRUPT], str):
        text = raw.at[i, CORRUPT]
    else:
        fields = {name: _plain(raw.at[i, name]) for name in RAW_COLUMNS if name in raw}
        text = orjson.dumps({k: v for k, v in fields.items() if v is not None}).decode()
    return text[:MAX_BAD_PAYLOAD_BYTES]


def _plain(value):
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return None
    if hasattr(value, "item"):  # numpy scalar
        return value.item()
    return value

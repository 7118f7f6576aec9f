"""The speed layer's SQL and UDFs, without Flink (fast)."""

import pandas as pd
import pytest

from core.settings import Settings
from events.properties import LIVE_COLUMNS
from events.sketches import RELATIVE_ERROR, estimate, merge, sketch_of
from speed_layer import sql

pytestmark = pytest.mark.fast


def test_sql_follows_settings():
    s = Settings(speed_window_seconds=7, speed_watermark_seconds=3, raw_topic="r", agg_topic="a", kafka_bootstrap="k:1")
    assert "INTERVAL '7' SECOND" in sql.aggregate_insert(s)
    assert "INTERVAL '3' SECOND" in sql.source_ddl(s)
    assert "'topic' = 'r'" in sql.source_ddl(s) and "'topic' = 'a'" in sql.sink_ddl(s)
    assert "'sink.delivery-guarantee' = 'exactly-once'" in sql.sink_ddl(s)


def test_one_transactional_writer_by_default_whatever_the_parallelism():
    assert "'sink.parallelism' = '1'" in sql.sink_ddl(Settings(speed_parallelism=4, raw_partitions=4))
    assert "'sink.parallelism' = '2'" in sql.sink_ddl(Settings(speed_sink_parallelism=2))


def test_a_sink_stage_of_its_own_checkpoints_apart(tmp_path):
    """A sink at another parallelism than the job is an operator chain of its own: the state of a
    job whose sink was chained can't be restored into it (and the other way round)."""
    from speed_layer.job import plan_checkpoint_dir

    def plan(job: int, sink: int):
        return plan_checkpoint_dir(
            Settings(data_dir=tmp_path, raw_partitions=4, speed_parallelism=job, speed_sink_parallelism=sink)
        )

    assert plan(1, 1) == plan(2, 2) == plan_checkpoint_dir(Settings(data_dir=tmp_path))
    assert plan(2, 1) != plan(1, 1) and plan(2, 1) == plan(4, 1)


def test_every_property_column_is_a_grouping_key():
    text = sql.aggregate_insert(Settings())
    group_by = text[text.rindex("GROUP BY") :]
    for column in LIVE_COLUMNS:
        assert f"`{column}`" in group_by
    assert "GROUPING SETS" not in text  # one row per combination: the stores group as asked


def test_quoting_cannot_break_out_of_a_literal():
    assert "'it''s'" in sql.source_ddl(Settings(raw_topic="it's"))


def test_hll_udf_matches_the_events_library():
    from speed_layer.udfs import hll_sketches

    ids = [f"v{i}" for i in range(1000)]
    out = hll_sketches(pd.Series([",".join(ids), "", None]))
    assert out[0] == sketch_of(ids)
    assert estimate([out[0]]) == pytest.approx(1000, rel=3 * RELATIVE_ERROR)
    assert estimate([out[1], out[2]]) == 0


def test_sketch_union_across_windows():
    a, b = sketch_of(f"v{i}" for i in range(600)), sketch_of(f"v{i}" for i in range(400, 1000))
    assert estimate([a, b]) == pytest.approx(1000, rel=3 * RELATIVE_ERROR)
    assert estimate([merge([a, b])]) == estimate([a, b])


def test_enrich_udf_returns_the_row_fields_in_order():
    from speed_layer.udfs import ENRICH_FIELDS, enrich_columns

    out = enrich_columns(
        pd.Series(["e1", "e2"]),
        pd.Series([1, 2]),
        pd.Series(["s", ""]),
        pd.Series(["pageview"] * 2),
        pd.Series(["https://s/x", "https://s/"]),
        pd.Series(["", ""]),
        pd.Series(["curl/8", ""]),
        pd.Series(["", ""]),
    )
    assert list(out.columns) == [n for n, _ in ENRICH_FIELDS]
    assert out.loc[0, "path"] == "/x" and bool(out.loc[0, "is_bot"]) and out.loc[1, "bad_reason"] == "missing_site"


def test_a_tick_is_a_bad_row_for_the_enrichment():
    """A collector's tick reaches the enrichment with only a ts: it moves the watermark, never a count."""
    from speed_layer.udfs import enrich_columns

    nothing = pd.Series([None], dtype=object)
    out = enrich_columns(nothing, pd.Series([1_795_507_200_000]), nothing, nothing, nothing, nothing, nothing, nothing)
    assert out.loc[0, "bad_reason"] == "missing_site"


def test_bots_fall_in_one_row_per_window_and_site():
    for column, source in LIVE_COLUMNS.items():
        assert f"CASE WHEN e.is_bot THEN '' ELSE e.{source} END AS `{column}`" in sql.ENRICHED_VIEW
    text = sql.aggregate_insert(Settings())
    assert "SUM(CASE WHEN `event` = 'pageview' THEN 1 ELSE 0 END), COUNT(*)" in text


def test_idle_partitions_follow_the_setting():
    from speed_layer.job import idle_timeout

    assert idle_timeout(Settings()) == "0 ms"  # never idle: the collectors' ticks move every partition
    assert idle_timeout(Settings(speed_idle_timeout_seconds=1.5)) == "1500 ms"


def test_a_changed_plan_checkpoints_apart_and_never_restores_another_plans_state(tmp_path):
    from speed_layer.job import latest_checkpoint, plan_checkpoint_dir

    s = Settings(data_dir=tmp_path)
    same, other = plan_checkpoint_dir(s), plan_checkpoint_dir(Settings(data_dir=tmp_path, speed_window_seconds=60))
    assert same == plan_checkpoint_dir(Settings(data_dir=tmp_path)) and same != other
    (other / "job-a" / "chk-3").mkdir(parents=True)
    (other / "job-a" / "chk-3" / "_metadata").write_bytes(b"x")
    assert latest_checkpoint(same) is None and latest_checkpoint(other) == other / "job-a" / "chk-3"


def test_moving_the_brokers_keeps_the_checkpoints():
    from speed_layer.job import plan_checkpoint_dir

    assert plan_checkpoint_dir(Settings(kafka_bootstrap="a:9092")) == plan_checkpoint_dir(
        Settings(kafka_bootstrap="b:9092")
    )


def test_an_unreachable_jobmanager_is_told_with_what_to_do():
    from speed_layer.job import jobmanager_address, running_job

    with pytest.raises(SystemExit, match=r"JobManager at 127.0.0.1:1 does not answer .* start the cluster"):
        running_job(Settings(speed_jobmanager="127.0.0.1:1"))
    with pytest.raises(ValueError, match="HOST:PORT"):
        jobmanager_address("flink-jobmanager")
    assert jobmanager_address("flink-jobmanager:8081") == ("flink-jobmanager", 8081)


def test_the_benchmarks_breakdown_still_removes_each_part_of_the_job():
    """bench/speed_layer.py --breakdown rewrites the job's SQL; a change to the job's SQL that
    leaves a part it removes unrecognised fails here, not after minutes of benchmark."""
    from bench.speed_layer import BREAKDOWN, variant_insert

    job = sql.aggregate_insert(Settings())
    assert variant_insert("job", job, 1) == job
    nodedup, nosketch, enrich = (variant_insert(k, job, 1) for k in ("nodedup", "nosketch", "enrich"))
    assert "ROW_NUMBER" not in nodedup and "TUMBLE(TABLE enriched" in nodedup and "hll_sketch" in nodedup
    assert "hll_sketch" not in nosketch and "ROW_NUMBER" in nosketch
    assert "TABLE enriched" in enrich and "DISTINCT dedupe_key" in enrich
    assert set(BREAKDOWN) == {"enrich", "nodedup", "nosketch"}
    with pytest.raises(RuntimeError, match="no longer applies"):
        variant_insert("nosketch", "INSERT INTO agg SELECT 1", 1)

"""The `pixel` command: run the platform or any of its services.

Every option also reads from the environment as PIXEL_<NAME> (see core/settings.py).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import os
import signal
import threading

import typer

from core.logs import setup_logging
from core.settings import Settings, settings_env

app = typer.Typer(
    help="Self-hostable pixel analytics on a Lambda architecture. Start with `pixel up --demo`.",
    no_args_is_help=True,
    add_completion=False,
)
log = logging.getLogger("pixel")


def _settings(**overrides) -> Settings:
    return Settings(**{k: v for k, v in overrides.items() if v is not None})


def _wait_for_signal() -> None:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()


@app.command()
def broker(
    port: int = typer.Option(None, help="Port to listen on [default: 9092, env PIXEL_BROKER_PORT]."),
) -> None:
    """Run the embedded Kafka-protocol broker (tansu) and create the platform's topics."""
    setup_logging("broker")
    from core.kafka.clients import ensure_topics
    from core.kafka.config import topic_specs
    from infra.tansu import start_tansu

    settings = _settings(broker_port=port)
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    proc = start_tansu(settings.broker_host, settings.broker_port, settings.run_dir / "tansu.log")
    try:
        ensure_topics(settings)
        log.info(
            "broker ready on %s:%d; topics %s",
            settings.broker_host,
            settings.broker_port,
            ", ".join(topic_specs(settings)),
        )
        _wait_for_signal()
    finally:
        proc.terminate()
        proc.wait(10)


@app.command()
def collector(
    port: int = typer.Option(None, help="HTTP port [default: 8080, env PIXEL_COLLECTOR_PORT]."),
    workers: int = typer.Option(None, help="Worker processes [default: 1, env PIXEL_COLLECTOR_WORKERS]."),
) -> None:
    """Run the pixel collector (GET /p.gif, POST /collect, /healthz, /metrics)."""
    setup_logging("collector")
    from core.kafka.clients import ensure_topics
    from pixel_api.server import serve

    settings = _settings(collector_port=port, collector_workers=workers)
    os.environ.update(settings_env(settings))  # workers build their Settings from the environment
    try:
        ensure_topics(settings, timeout=5)
    except RuntimeError as exc:  # not fatal: hits are spooled until the broker is reachable
        log.warning("%s; starting anyway, hits will be spooled to %s", exc, settings.spool_dir)
    log.info(
        "collector on http://%s:%d/p.gif (%d worker(s))",
        settings.collector_host,
        settings.collector_port,
        settings.collector_workers,
    )
    serve(settings)


@app.command()
def lander() -> None:
    """Run the raw lander: pixel.raw -> raw/date=/hour=/ files in the raw store."""
    setup_logging("lander")
    from batch_layer.lander.service import Lander

    settings = _settings()
    worker = Lander(settings)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: worker.stop())
    if settings.lander_metrics_port:
        from batch_layer.lander.service import serve_metrics

        serve_metrics(worker, settings.lander_metrics_port)
        log.info("metrics on :%d/metrics", settings.lander_metrics_port)
    log.info("landing %s into %s", worker.topics, worker.store.url)
    worker.run()
    log.info("lander stopped: %s", worker.stats)


@app.command()
def speed(
    jobmanager: str = typer.Option(
        "",
        "--jobmanager",
        metavar="HOST:PORT",
        help="Run the job on this Flink cluster (its JobManager's REST endpoint) and follow it; "
        "default: PIXEL_SPEED_JOBMANAGER, else a local mini-cluster in this process.",
    ),
) -> None:
    """Run the speed layer: a PyFlink job (pixel.raw -> pixel.agg) on a local mini-cluster or a
    Flink cluster. On a cluster, stopping this command leaves the job running there; started
    again, it follows the running job instead of submitting a second one."""
    setup_logging("speed")
    from core.kafka.clients import ensure_topics
    from core.process import end_children_on
    from speed_layer.job import run

    settings = _settings(speed_jobmanager=jobmanager or None)
    # This process is a job driver, never a UDF worker: a PyFlink flag inherited from a parent
    # that ran Flink in-process (a test, a benchmark) must not stop it launching its gateway.
    os.environ.pop("PYFLINK_GATEWAY_DISABLED", None)
    # Cap the mini-cluster's JVM (the default would take 1/4 of the machine's memory).
    os.environ.setdefault("JVM_ARGS", f"-Xmx{settings.flink_heap}")
    # Stopped (or orphaned: `pixel up` death-links its services), take the Flink JVM along.
    end_children_on(signal.SIGTERM, signal.SIGINT)
    ensure_topics(settings)
    run(settings)


def _day(value: str, option: str) -> dt.date:
    from batch_layer.schedule import DayRangeError, parse_day

    try:
        return parse_day(value, option)
    except DayRangeError as exc:
        raise typer.BadParameter(str(exc), param_hint=option) from None


@app.command()
def batch(
    date: str = typer.Option(None, "--date", help="The UTC day to close, YYYY-MM-DD (default: the last closable day)."),
    first: str = typer.Option(None, "--from", help="Backfill: first day (with --to)."),
    last: str = typer.Option(None, "--to", help="Backfill: last day, inclusive."),
    nightly: bool = typer.Option(
        False,
        help="Run forever: close each day at PIXEL_BATCH_SCHEDULE_UTC, "
        "first catching up on missed days (what `pixel up` runs).",
    ),
) -> None:
    """Run the batch layer (PySpark): raw -> bad rows, clean Parquet, daily and sessions views.

    Each day is rewritten whole (re-running gives the same result) and views/_watermark
    advances to the last closed day. Reads events of a day that landed up to
    PIXEL_BATCH_LATENESS_HOURS late in the next day's folders.
    """
    setup_logging("batch")
    settings = _settings()
    if nightly:
        from batch_layer.schedule import Nightly

        worker = Nightly(settings, settings_env(settings))
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: worker.stop())
        log.info("nightly batch at %s UTC, data in %s", settings.batch_schedule_utc, settings.storage_root)
        worker.run()
        return
    from batch_layer.schedule import DayRangeError, days_to_run

    try:
        days = days_to_run(date, first, last, dt.datetime.now(dt.UTC), settings.batch_lateness_hours)
    except DayRangeError as exc:
        raise typer.BadParameter(str(exc), param_hint=exc.option) from None
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from batch_layer.submit import run_days

    console = Console(stderr=True, width=max(Console(stderr=True).width, 120))
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} days"),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("starting Spark", total=len(days))
        summaries = run_days(
            settings,
            days,
            on_stage=lambda day, stage: progress.update(task, description=f"{day}: {stage}"),
            on_day_done=lambda _day: progress.advance(task),
        )
    for table in _summary_tables(summaries):
        console.print(table)
    log.info("closed %s; views/_watermark is in %s/views", ", ".join(str(d) for d in days), settings.storage_root)


@app.command()
def reprocess(
    first: str = typer.Option(..., "--from", help="First closed day, YYYY-MM-DD."),
    last: str = typer.Option(..., "--to", help="Last closed day, inclusive."),
) -> None:
    """Re-run closed days with today's rules (a new bot list, geo database, tables or code).

    Prints what changed per day; `pixel serve` then reloads each day into its stores and logs
    what the API answered before and after (GET /api/v1/stats/restatements)."""
    setup_logging("batch")
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from batch_layer.reprocess import COUNTS, NotClosed
    from batch_layer.reprocess import reprocess as rerun
    from batch_layer.submit import run_days
    from core.lake.storage import open_storage

    settings = _settings()
    start, end = _day(first, "--from"), _day(last, "--to")
    if end < start:
        raise typer.BadParameter("--to is before --from", param_hint="--to")
    days = [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
    console = Console(stderr=True, width=max(Console(stderr=True).width, 120))
    with Progress(
        TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total} days"),
        TimeElapsedColumn(), console=console,
    ) as progress:  # fmt: skip
        task = progress.add_task("starting Spark", total=len(days))

        def run(days):
            return run_days(
                settings,
                days,
                on_stage=lambda day, stage: progress.update(task, description=f"{day}: {stage}"),
                on_day_done=lambda _day: progress.advance(task),
            )

        try:
            changes = rerun(open_storage(settings.storage_root, settings.hdfs_user), days, run)
        except NotClosed as exc:
            raise typer.BadParameter(str(exc), param_hint="--from") from None
    table = Table(title="reprocessed", title_justify="left")
    for name in ("day", *COUNTS, "rules changed"):
        table.add_column(name, justify="left" if name in ("day", "rules changed") else "right", no_wrap=True)
    for c in changes:
        cells = [
            f"{c.before[k]:,}" if c.before[k] == c.after[k] else f"{c.before[k]:,} -> {c.after[k]:,}" for k in COUNTS
        ]
        table.add_row(str(c.day), *cells, ", ".join(c.rules) or "none")
    Console(width=max(Console().width, 120)).print(table)
    changed = [str(c.day) for c in changes if c.changed]
    typer.echo(f"{len(changed)} of {len(changes)} days changed{': ' + ', '.join(changed) if changed else ''}")


def _summary_tables(summaries):
    """The per-day counts, then the bad rows by reason (a column of their own would not fit)."""
    from rich.table import Table

    table = Table(title="batch summary", title_justify="left")
    counts = ("read", "late", "bad_total", "duplicates", "bots", "clean")
    for name in ("day", "read", "late", "bad", "duplicates", "bots", "clean", "sites", "seconds"):
        table.add_column(name, justify="left" if name == "day" else "right", no_wrap=True)
    for s in summaries:
        table.add_row(s.date, *(f"{getattr(s, k):,}" for k in counts), str(s.sites), f"{s.seconds:.1f}")
    if len(summaries) > 1:
        table.add_row(
            "total",
            *(f"{sum(getattr(s, k) for s in summaries):,}" for k in counts),
            "",
            f"{sum(s.seconds for s in summaries):.1f}",
            style="bold",
        )
    reasons = Table(title="bad rows by reason (in bad/date=D/)", title_justify="left")
    for name in ("day", "reason", "rows"):
        reasons.add_column(name, justify="right" if name == "rows" else "left", no_wrap=True)
    for s in summaries:
        for reason, n in sorted(s.bad.items()):
            reasons.add_row(s.date, reason, f"{n:,}")
    return [table] + ([reasons] if reasons.row_count else [])


@app.command()
def drift(
    date: str = typer.Option(..., "--date", help="A closed UTC day, YYYY-MM-DD."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Compare the speed view with the batch view for a closed day, per site.

    Pageviews should match up to events the speed layer lost or saw twice; visitors differ by
    the HLL sketch's error (~1.6%) on top of that.
    """
    setup_logging("drift")
    from core.lake.storage import open_storage
    from serving.batch.views import BatchViews
    from serving.drift import drift as drift_of
    from serving.drift import drift_from_log
    from serving.realtime import open_realtime_store
    from serving.store import restatements

    settings = _settings()
    day = _day(date, "--date")
    storage = open_storage(settings.storage_root, settings.hdfs_user)
    views = BatchViews(storage)
    watermark = views.watermark()
    if watermark is None or day > watermark or views.table("daily", day) is None:
        raise typer.BadParameter(
            f"{day} has no batch view (watermark: {watermark}); run `pixel batch --date {day}`", param_hint="--date"
        )
    rows = drift_from_log(restatements.read_day(storage, day))  # what `pixel serve` logged when it loaded the day
    if not rows:  # closed before the log was kept (or not loaded yet): the real-time store's view
        try:
            store = open_realtime_store(settings, read_only=True)
        except Exception as exc:  # a locked or missing DuckDB file, an unreachable Druid
            log.error("the day has no restatement log and the real-time store can't be opened: %s", exc)
            raise typer.Exit(1) from None
        rows = drift_of(views, store, day)
    if as_json:
        typer.echo(
            json.dumps(
                [
                    {
                        "site": r.site,
                        "batch_pageviews": r.batch.pageviews,
                        "speed_pageviews": r.speed.events,
                        "pageviews_drift_pct": r.pageviews_pct,
                        "batch_visitors": r.batch.visitors,
                        "speed_visitors": r.speed.visitors,
                        "visitors_drift_pct": r.visitors_pct,
                    }
                    for r in rows
                ],
                indent=1,
            )
        )
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"speed vs batch, {day}", title_justify="left")
    for name in ("site", "batch pageviews", "speed pageviews", "drift", "batch visitors", "speed visitors", "drift"):
        table.add_column(name, justify="left" if name == "site" else "right", no_wrap=True)
    pct = lambda v: "n/a" if v is None else f"{v:+.2f}%"  # noqa: E731
    for r in rows:
        table.add_row(
            r.site,
            f"{r.batch.pageviews:,}",
            f"{r.speed.events:,}",
            pct(r.pageviews_pct),
            f"{r.batch.visitors:,}",
            f"{r.speed.visitors:,}",
            pct(r.visitors_pct),
        )
    Console(width=max(Console().width, 120)).print(table)


@app.command()
def lineage(
    date: str = typer.Option(..., "--date", help="A closed UTC day, YYYY-MM-DD."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (keys: code, ua_parser, bot_list, geo_db, ...)."),
) -> None:
    """What made a closed day: code and rule versions, the geo database, the inputs, the run."""
    from core.lake import layout
    from core.lake.storage import open_storage

    settings = _settings()
    day = _day(date, "--date")
    storage = open_storage(settings.storage_root, settings.hdfs_user)
    path = layout.run_summary(day)
    made_by = json.loads(storage.read(path)).get("lineage") if storage.exists(path) else None
    if not made_by:
        raise typer.BadParameter(
            f"{day} has no lineage: close it (again) with `pixel batch --date {day}`", param_hint="--date"
        )
    if as_json:
        typer.echo(json.dumps(made_by, indent=1, sort_keys=True))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("what", "", title=f"lineage of {day}", title_justify="left", show_header=False)
    for key, value in made_by.items():
        shown = ", ".join(f"{k} {v}" for k, v in value.items()) if isinstance(value, dict) else str(value)
        table.add_row(key, shown)
    Console(width=max(Console().width, 120)).print(table)


@app.command()
def serve(
    port: int = typer.Option(None, help="Port [default: 8000, env PIXEL_SERVING_PORT]."),
) -> None:
    """Serve the Stats API (Plausible v1 shape, docs at /docs) over the merged batch and real-time
    views; with the embedded store, also ingest pixel.agg into it (this process owns the file)."""
    setup_logging("serve")
    import uvicorn

    from serving.app import create_app

    settings = _settings(serving_port=port)
    log.info("stats API on http://%s:%d/api/v1/stats (docs: /docs)", settings.serving_host, settings.serving_port)
    uvicorn.run(create_app(settings), host=settings.serving_host, port=settings.serving_port, log_level="warning")


@app.command()
def config(
    markdown: bool = typer.Option(False, "--markdown", help="Print a Markdown table (as in docs/operations.md)."),
) -> None:
    """Show every setting: its environment variable, the value in force here, and what it does."""
    from core.settings import settings_table

    rows = settings_table(_settings())
    if markdown:
        typer.echo("| variable | default | meaning |\n|---|---|---|")
        for name, value, meaning in rows:
            typer.echo(f"| `{name}` | `{value}` | {meaning} |")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("variable", "value", "meaning")
    for row in rows:
        table.add_row(*row)
    Console(width=max(Console().width, 140)).print(table)


@app.command()
def up(
    demo: bool = typer.Option(False, help="Also generate realistic traffic (10 hits/s)."),
) -> None:
    """Start the platform locally in the foreground (Ctrl-C stops it cleanly).

    Runs: broker -> lander -> speed layer (PyFlink) -> serving (Stats API + the embedded
    real-time store's ingestion) -> nightly batch (PySpark, at PIXEL_BATCH_SCHEDULE_UTC) ->
    collector.
    """
    setup_logging("up")
    from infra.tansu import wait_for_port
    from pixel.supervisor import AlreadyRunning, Supervisor, check_ports_free, hold_data_dir

    settings = _settings()
    if demo and not settings.trusted_proxies:
        # The demo sends each simulated visitor's IP as X-Forwarded-For from loopback.
        settings = _settings(trusted_proxies=["127.0.0.1/32"])
    try:
        lock = hold_data_dir(settings.run_dir)  # noqa: F841 -- held until this process ends
        check_ports_free(
            {
                "PIXEL_BROKER_PORT": (settings.broker_host, settings.broker_port),
                "PIXEL_COLLECTOR_PORT": (settings.collector_host, settings.collector_port),
                "PIXEL_SERVING_PORT": (settings.serving_host, settings.serving_port),
            }
        )
    except AlreadyRunning as exc:
        log.error("%s", exc)
        raise typer.Exit(2) from None
    sup = Supervisor(settings_env(settings))
    sup.start("broker", "broker")
    wait_for_port(settings.broker_host, settings.broker_port, 20)
    sup.start("lander", "lander")
    sup.start("speed", "speed")
    sup.start("serve", "serve")
    sup.start("batch", "batch", "--nightly")
    sup.start("collector", "collector")
    wait_for_port(settings.collector_host, settings.collector_port, 30)
    log.info(
        "pixel: http://%s:%d/p.gif?site=YOUR.SITE  stats API: http://%s:%d/docs  data: %s",
        settings.collector_host,
        settings.collector_port,
        settings.serving_host,
        settings.serving_port,
        settings.storage_root,
    )
    if demo:
        _register_demo_sites(3)
        sup.start("demo", "demo", "--events", "100000000", "--sites", "3", "--rate", "10")
    raise typer.Exit(sup.wait())


def _register_demo_sites(n: int) -> None:
    """The demo's sites, public, so the dashboard shows them without tokens."""
    from pixel.demo import TrafficModel

    registry, settings = _registry(), _settings()
    known = {site.domain for site in registry.list_sites()}
    demo_sites = TrafficModel(sites=n).sites
    for domain in demo_sites:
        if domain not in known:
            registry.create_site(domain, public=True)
    log.info("dashboard: http://%s:%d/sites/%s", settings.serving_host, settings.serving_port, demo_sites[0])


sites_app = typer.Typer(
    help="Sites whose stats the API serves (the registry: PIXEL_REGISTRY_URL).", no_args_is_help=True
)
tokens_app = typer.Typer(help="API tokens for private sites.", no_args_is_help=True)
goals_app = typer.Typer(
    help="A site's goals: conversions the API counts (event:goal, conversion_rate).", no_args_is_help=True
)
app.add_typer(sites_app, name="sites")
app.add_typer(tokens_app, name="tokens")
app.add_typer(goals_app, name="goals")


def _registry():
    from serving.registry import Registry

    settings = _settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return Registry(settings.registry_database_url)


@sites_app.command("create")
def sites_create(
    domain: str = typer.Argument(..., help="The site's domain, as in the embed snippet's site=."),
    public: bool = typer.Option(False, "--public", help="Anyone may read its stats, without a token."),
) -> None:
    """Register a site."""
    from serving.registry import RegistryError

    try:
        site = _registry().create_site(domain, public=public)
    except RegistryError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"created {site.domain} ({'public' if site.public else 'private'})")
    if not site.public:
        typer.echo(f"read its stats with a token: pixel tokens create {site.domain}")


@sites_app.command("list")
def sites_list() -> None:
    """List the registered sites."""
    from rich.console import Console
    from rich.table import Table

    table = Table("site", "access", "tokens", "created (UTC)")
    for site in _registry().list_sites():
        table.add_row(
            site.domain, "public" if site.public else "private", str(site.tokens), f"{site.created_at:%Y-%m-%d %H:%M}"
        )
    Console(width=max(Console().width, 100)).print(table)


@sites_app.command("delete")
def sites_delete(
    domain: str = typer.Argument(..., help="The site to delete."),
    purge: bool = typer.Option(
        False,
        "--purge",
        help="Also erase its data: raw, bad rows, clean events, views and both stores (can't be undone).",
    ),
    yes: bool = typer.Option(False, "--yes", "-y", help="Don't ask for confirmation."),
) -> None:
    """Delete a site: its tokens and goals; with --purge, every row of its data too."""
    from serving.registry import RegistryError, normalize_domain

    try:
        domain = normalize_domain(domain)
    except RegistryError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    registry = _registry()
    known = registry.site(domain) is not None
    if not known and not purge:
        typer.echo(f"error: no site {domain} (see `pixel sites list`)", err=True)
        raise typer.Exit(1)
    what = "and erase all its data" if purge else "(its data stays: --purge erases it)"
    if not yes and not typer.confirm(f"delete site {domain} {what}?"):
        raise typer.Exit(1)
    if purge:
        _purge_site(domain)
    if known:
        registry.delete_site(domain)
        typer.echo(f"deleted site {domain}")


def _purge_site(domain: str) -> None:
    from rich.progress import Progress

    from batch_layer.purge import days_of_lake, purge_lake, request_purge
    from core.lake.storage import open_storage

    settings = _settings()
    storage = open_storage(settings.storage_root, settings.hdfs_user)
    request_purge(storage, domain)  # the stores first: the site's numbers go at once
    with Progress(transient=True) as progress:
        task = progress.add_task(f"erasing {domain}", total=len(days_of_lake(storage)))
        purged = purge_lake(storage, domain, progress=lambda _day: progress.advance(task))
    rows = ", ".join(f"{name} {n:,}" for name, n in purged.rows.items() if n) or "none"
    typer.echo(f"erased {purged.total:,} rows of {domain} from the lake ({rows}): {purged.files_rewritten} files")
    if purged.days_restated:
        typer.echo(f"closed days reloaded by the stores: {len(purged.days_restated)}")
    for path in purged.files_unreadable:
        typer.echo(f"warning: {path} is not a whole gzip file and was left as it is", err=True)
    typer.echo("the serving process erases it from its stores at its next sync (`pixel serve` applies it on start)")


@tokens_app.command("create")
def tokens_create(domain: str = typer.Argument(..., help="The site the token opens.")) -> None:
    """Create an API token for a site. It is printed once: only its hash is kept."""
    from serving.registry import RegistryError

    try:
        token = _registry().create_token(domain)
    except RegistryError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(token)
    typer.echo(f"(shown once; use it as `Authorization: Bearer <token>` for site {domain})", err=True)


@goals_app.command("create")
def goals_create(
    domain: str = typer.Argument(..., help="The site."),
    event: str = typer.Option("", help="An event goal: the custom event's name, e.g. Signup."),
    page: str = typer.Option("", help="A page goal: a path, * matches anything, e.g. '/thanks*'."),
) -> None:
    """Add a goal: an event (--event Signup) or a page (--page '/thanks*')."""
    from serving.registry import RegistryError

    try:
        goal = _registry().create_goal(domain, event=event, page=page)
    except RegistryError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"created goal {goal.name!r} on {domain}")


@goals_app.command("list")
def goals_list(domain: str = typer.Argument(..., help="The site.")) -> None:
    """List a site's goals (their names are event:goal's values)."""
    for goal in _registry().goals(domain):
        typer.echo(f"{goal.name}\t{'event ' + goal.event if goal.event else 'page ' + goal.page}")


@goals_app.command("delete")
def goals_delete(
    domain: str = typer.Argument(..., help="The site."),
    name: str = typer.Argument(..., help="The goal's name, as `pixel goals list` shows it."),
) -> None:
    """Delete a goal (the events stay: it can be created again)."""
    from serving.registry import RegistryError

    try:
        _registry().delete_goal(domain, name)
    except RegistryError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"deleted goal {name!r} of {domain}")


@app.command("demo")
def demo_cmd(
    events: int = typer.Option(1000, help="How many hits to send (with --days: in all)."),
    sites: int = typer.Option(3, help="How many sites (site1.example ...)."),
    days: int = typer.Option(
        1,
        min=1,
        help="Spread the events over this many days, today included. "
        "Past days can't go through the collector (it stamps its own clock): "
        "their share is landed straight into the raw dataset, as the lander would.",
    ),
    rate: float = typer.Option(None, help="Hits per second (default: as fast as possible)."),
    url: str = typer.Option(None, help="Collector base URL (default: from settings)."),
    seed: int = typer.Option(None, help="Random seed, for reproducible traffic."),
) -> None:
    """Send realistic synthetic traffic to a running collector (and, with --days, history)."""
    setup_logging("demo")
    from rich.progress import Progress

    from pixel.demo import TrafficModel, history, send_traffic, write_history

    settings = _settings()
    base = url or f"http://{settings.collector_host}:{settings.collector_port}"
    past = events * (days - 1) // days
    if past:
        from core.lake.storage import open_storage

        storage = open_storage(settings.storage_root, settings.hdfs_user)
        today = dt.datetime.now(dt.UTC).date()
        model = TrafficModel(sites, seed, visitors=max(1000, past // days // 5))
        with Progress() as progress:
            task = progress.add_task(f"landing {days - 1} past day(s) in {storage.url}", total=days - 1)
            for i in range(days - 1, 0, -1):
                day = today - dt.timedelta(days=i)
                write_history(storage, history(model, day, past // (days - 1), seed or 0))
                progress.advance(task)
        log.info(
            "landed %d events over %d past day(s); close them with `pixel batch --from %s --to %s`",
            past // (days - 1) * (days - 1),
            days - 1,
            today - dt.timedelta(days=days - 1),
            today - dt.timedelta(days=1),
        )
    live = events - past
    with Progress(disable=rate is not None and live > 1_000_000) as progress:
        task = progress.add_task(f"sending to {base}", total=live)
        ok = asyncio.run(
            send_traffic(base, live, sites, rate=rate, seed=seed, progress=lambda n: progress.advance(task, n))
        )
    log.info("%d/%d hits accepted", ok, live)
    if ok < live:
        raise typer.Exit(1)


if __name__ == "__main__":
    app()

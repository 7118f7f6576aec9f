"""The `pixel` command: run the platform or any of its services.

Every option also reads from the environment as PIXEL_<NAME> (see pixel/settings.py).
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import threading

import typer

from pixel.logs import setup_logging
from pixel.settings import Settings

app = typer.Typer(
    help="Self-hostable pixel analytics on a Lambda architecture. Start with `pixel up --demo`.",
    no_args_is_help=True,
    add_completion=False,
)
log = logging.getLogger("pixel")


def _settings(**overrides) -> Settings:
    return Settings(**{k: v for k, v in overrides.items() if v is not None})


def _export(settings: Settings) -> dict[str, str]:
    """The environment that gives child processes exactly these settings."""
    env = dict(os.environ)
    for name, value in settings.model_dump().items():
        if isinstance(value, list):
            value = json.dumps(value)
        env[f"PIXEL_{name.upper()}"] = str(value)
    return env


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
    from infra.tansu import start_tansu
    from pixel import kafka

    settings = _settings(broker_port=port)
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    proc = start_tansu(settings.broker_host, settings.broker_port, settings.run_dir / "tansu.log")
    try:
        kafka.ensure_topics(settings)
        log.info("broker ready on %s:%d; topics %s", settings.broker_host, settings.broker_port,
                 ", ".join(kafka.topic_specs(settings)))
        _wait_for_signal()
    finally:
        proc.terminate()
        proc.wait(10)


@app.command()
def collector(
    port: int = typer.Option(None, help="HTTP port [default: 8080, env PIXEL_COLLECTOR_PORT]."),
    workers: int = typer.Option(None, help="uvicorn worker processes [default: 1]."),
) -> None:
    """Run the pixel collector (GET /p.gif, POST /collect, /healthz, /metrics)."""
    setup_logging("collector")
    from pixel import kafka
    from pixel_api.server import serve

    settings = _settings(collector_port=port, collector_workers=workers)
    os.environ.update(_export(settings))  # workers build their Settings from the environment
    try:
        kafka.ensure_topics(settings, timeout=5)
    except RuntimeError as exc:  # not fatal: hits are spooled until the broker is reachable
        log.warning("%s; starting anyway, hits will be spooled to %s", exc, settings.spool_dir)
    log.info("collector on http://%s:%d/p.gif (%d worker(s))", settings.collector_host,
             settings.collector_port, settings.collector_workers)
    serve(settings)


@app.command()
def lander() -> None:
    """Run the raw lander: pixel.raw -> raw/date=/hour=/ files in the raw store."""
    setup_logging("lander")
    from batch_layer.lander import Lander

    worker = Lander(_settings())
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: worker.stop())
    log.info("landing %s into %s", worker.topics, worker.store.url)
    worker.run()
    log.info("lander stopped: %s", worker.stats)


@app.command()
def speed() -> None:
    """Run the speed layer: a PyFlink job on a local mini-cluster (pixel.raw -> pixel.agg)."""
    setup_logging("speed")
    from pixel import kafka
    from speed_layer.job import run

    settings = _settings()
    # This process is a job driver, never a UDF worker: a PyFlink flag inherited from a parent
    # that ran Flink in-process (a test, a benchmark) must not stop it launching its gateway.
    os.environ.pop("PYFLINK_GATEWAY_DISABLED", None)
    # Cap the mini-cluster's JVM (the default would take 1/4 of the machine's memory).
    os.environ.setdefault("JVM_ARGS", f"-Xmx{settings.flink_heap}")
    kafka.ensure_topics(settings)
    run(settings)


@app.command()
def up(
    demo: bool = typer.Option(False, help="Also generate realistic traffic (10 hits/s)."),
) -> None:
    """Start the platform locally in the foreground (Ctrl-C stops it cleanly).

    Runs: broker -> lander -> speed layer (PyFlink) -> collector. Serving joins in a later
    release; until then the speed layer's output waits on the pixel.agg topic.
    """
    setup_logging("up")
    from infra.tansu import wait_for_port
    from pixel.supervisor import Supervisor

    settings = _settings()
    if demo and not settings.trusted_proxies:
        # The demo sends each simulated visitor's IP as X-Forwarded-For from loopback.
        settings = _settings(trusted_proxies=["127.0.0.1/32"])
    sup = Supervisor(_export(settings))
    sup.start("broker", "broker")
    wait_for_port(settings.broker_host, settings.broker_port, 20)
    sup.start("lander", "lander")
    sup.start("speed", "speed")
    sup.start("collector", "collector")
    wait_for_port(settings.collector_host, settings.collector_port, 30)
    log.info("pixel: http://%s:%d/p.gif?site=YOUR.SITE  data: %s", settings.collector_host,
             settings.collector_port, settings.storage_root)
    if demo:
        sup.start("demo", "demo", "--events", "100000000", "--sites", "3", "--rate", "10")
    raise typer.Exit(sup.wait())


@app.command("demo")
def demo_cmd(
    events: int = typer.Option(1000, help="How many hits to send."),
    sites: int = typer.Option(3, help="How many sites (site1.example ...)."),
    rate: float = typer.Option(None, help="Hits per second (default: as fast as possible)."),
    url: str = typer.Option(None, help="Collector base URL [default: from settings]."),
    seed: int = typer.Option(None, help="Random seed, for reproducible traffic."),
) -> None:
    """Send realistic synthetic traffic to a running collector."""
    setup_logging("demo")
    from rich.progress import Progress

    from pixel.demo import send_traffic

    settings = _settings()
    base = url or f"http://{settings.collector_host}:{settings.collector_port}"
    with Progress(disable=rate is not None and events > 1_000_000) as progress:
        task = progress.add_task(f"sending to {base}", total=events)
        ok = asyncio.run(send_traffic(base, events, sites, rate=rate, seed=seed,
                                      progress=lambda n: progress.advance(task, n)))
    log.info("%d/%d hits accepted", ok, events)
    if ok < events:
        raise typer.Exit(1)


if __name__ == "__main__":
    app()

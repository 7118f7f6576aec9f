"""HTTP benchmark of the collector, with wrk on loopback, in one run:

  1. nginx `empty_gif` with a JSON access log: the ceiling for answering a pixel on this box;
  2. a plain FastAPI route doing the collector's work (bench/fastapi_baseline.py);
  3. the collector (its /p.gif route in front of FastAPI) with the Kafka hand-off on (a real
     tansu broker and the lander running, so retain-until-landed is exercised too), on its
     default server (granian, in RSGI), on granian in ASGI and on uvicorn (PIXEL_COLLECTOR_SERVER);
  4. the server's floor: apps that answer the GIF and do nothing else, on granian as the
     collector runs it, in ASGI and in granian's own RSGI (bench/empty_app.py).

Each is loaded at full speed (max req/s, p50/p99), then the collector is loaded again at half
of its max rate (wrk paced by a Lua delay) to read its p99 there. All of them, --rounds times;
prints a markdown table of the medians and the ratios (medians of each round's own ratios);
writes bench/results/collector_http-w<workers>.json.

    .venv/bin/python bench/collector_http.py [--duration 10] [--workers 1] [--connections 64] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from infra.tansu import wait_for_port  # noqa: E402
from tests.harness import Broker, Service, free_port, make_settings, settings_env  # noqa: E402

MIX_SIZE = 5000  # distinct requests in the mix, drawn from the demo's traffic model
NGINX_CONF = """
worker_processes {workers};
error_log {tmp}/error.log;
pid {tmp}/nginx.pid;
events {{ worker_connections 4096; }}
http {{
  log_format pixel escape=json '{{"ts":"$msec","ip":"$remote_addr","q":"$args","ua":"$http_user_agent","ref":"$http_referer"}}';
  access_log {tmp}/access.log pixel buffer=256k flush=1s;
  client_body_temp_path {tmp}; proxy_temp_path {tmp}; fastcgi_temp_path {tmp};
  uwsgi_temp_path {tmp}; scgi_temp_path {tmp};
  server {{
    listen 127.0.0.1:{port};
    location = /p.gif {{ empty_gif; add_header Cache-Control no-store; }}
  }}
}}
"""
# wrk picks each request from a realistic mix (Zipf sites/pages/referrers, UA mix), the same
# for every server; optionally paced (delay per request and connection) for a fixed rate.
MIX_LUA = """
local reqs = {{
{requests}
}}
local n = #reqs
function request() return reqs[math.random(n)] end
"""
PACE_LUA = """
local delay_ms = {delay_ms}
function delay() return delay_ms end
"""


def write_mix_script(path: Path, pace_delay_ms: int | None = None) -> str:
    from urllib.parse import urlencode

    from pixel.demo import TrafficModel

    model = TrafficModel(sites=20, seed=42)
    lines = []
    for _ in range(MIX_SIZE):
        params, headers = model.hit()
        target = "/p.gif?" + urlencode(params)
        lines.append(
            f'  wrk.format("GET", {json.dumps(target)}, {{["Host"]="127.0.0.1", ["User-Agent"]={json.dumps(headers["user-agent"])}}}),'
        )
    script = MIX_LUA.format(requests="\n".join(lines))
    if pace_delay_ms is not None:
        script += PACE_LUA.format(delay_ms=pace_delay_ms)
    path.write_text(script)
    return str(path)


def wrk(url: str, duration: int, connections: int, script: str) -> dict:
    cmd = ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency", "-s", script, url]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])
    lat = {m[1]: _ms(m[2]) for m in re.finditer(r"^\s+(50|99)%\s+([\d.]+\w+)", out, re.M)}
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: (.*)", out)
    return {
        "rps": rps,
        "p50_ms": lat["50"],
        "p99_ms": lat["99"],
        "non2xx": int(errors[1]) if errors else 0,
        "socket_errors": sock[1] if sock else "",
    }


def _ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def run_nginx(tmp: Path, workers: int, duration: int, connections: int, script: str) -> dict:
    port = free_port()
    conf = tmp / "nginx.conf"
    conf.write_text(NGINX_CONF.format(workers=workers, tmp=tmp, port=port))
    proc = subprocess.Popen(["nginx", "-c", str(conf), "-p", str(tmp), "-g", "daemon off;"], stderr=subprocess.DEVNULL)
    try:
        wait_for_port("127.0.0.1", port, 10)
        return wrk(f"http://127.0.0.1:{port}", duration, connections, script)
    finally:
        proc.terminate()
        proc.wait()


def run_uvicorn_baseline(settings, duration: int, connections: int, script: str) -> dict:
    env = settings_env(settings)
    env["PYTHONPATH"] = str(ROOT)
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "bench.fastapi_baseline:create_app",
        "--host",
        "127.0.0.1",
        "--port",
        str(settings.collector_port),
        "--workers",
        str(settings.collector_workers),
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    return load_server(cmd, env, settings.collector_port, duration, connections, script)


def load_server(cmd: list[str], env: dict, port: int, duration: int, connections: int, script: str) -> dict:
    """Start a server from the repo root, load it with wrk once it listens, stop it."""
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT)
    try:
        wait_for_port("127.0.0.1", port, 30)
        time.sleep(1)
        return wrk(f"http://127.0.0.1:{port}", duration, connections, script)
    finally:
        proc.terminate()
        proc.wait(30)


def run_empty_app(interface: str, workers: int, duration: int, connections: int, script: str) -> dict:
    port = free_port()
    cmd = [sys.executable, "-m", "granian", "--interface", interface, "--loop", "uvloop", "--workers", str(workers)]
    cmd += ["--host", "127.0.0.1", "--port", str(port), "--no-access-log", "--log-level", "warning"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return load_server([*cmd, f"bench.empty_app:{interface}"], env, port, duration, connections, script)


COLLECTOR = "collector (granian RSGI + Kafka)"
GRANIAN_ASGI = "collector on granian, ASGI"
UVICORN = "collector on uvicorn (ASGI)"
NGINX = "nginx empty_gif + JSON log"
FASTAPI = "FastAPI route (same work)"
HALF = "collector at half max rate"


def one_round(tmp: Path, args: argparse.Namespace, mix: str) -> dict[str, dict]:
    """Every server of the comparison loaded once, one after the other."""
    results = {}
    print(f"nginx empty_gif ({args.workers} worker(s)) ...", flush=True)
    (tmp / "nginx").mkdir(parents=True)
    results[NGINX] = run_nginx(tmp / "nginx", args.workers, args.duration, args.connections, mix)
    for interface in ("asgi", "rsgi"):
        print(f"empty {interface.upper()} app on granian (the server's floor) ...", flush=True)
        results[f"empty {interface.upper()} app on granian"] = run_empty_app(
            interface, args.workers, args.duration, args.connections, mix
        )
    settings = make_settings(tmp / "data", collector_workers=args.workers)
    broker = Broker(settings).start()
    lander = Service("lander", settings, tmp).start()
    try:
        print("plain FastAPI route, same work ...", flush=True)
        results[FASTAPI] = run_uvicorn_baseline(settings, args.duration, args.connections, mix)
        print("collector (the default: granian, RSGI) with the Kafka hand-off ...", flush=True)
        collector = Service("collector", settings, tmp).start()
        try:
            time.sleep(1)
            url = f"http://127.0.0.1:{settings.collector_port}"
            full = wrk(url, args.duration, args.connections, mix)
            results[COLLECTOR] = full
            half_rate = full["rps"] / 2
            paced = write_mix_script(tmp / "paced.lua", int(args.connections * 1000 / half_rate))
            print(f"collector paced at ~{half_rate:.0f} req/s ...", flush=True)
            results[HALF] = wrk(url, args.duration, args.connections, paced)
        finally:
            collector.stop()
        for name, server in ((GRANIAN_ASGI, "granian-asgi"), (UVICORN, "uvicorn")):
            print(f"{name} (PIXEL_COLLECTOR_SERVER={server}) ...", flush=True)
            settings.collector_server = server
            collector = Service("collector", settings, tmp).start()
            try:
                time.sleep(1)
                results[name] = wrk(url, args.duration, args.connections, mix)
            finally:
                collector.stop()
    finally:
        lander.stop()
        broker.kill()
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=int, default=10, help="seconds per load run")
    ap.add_argument("--workers", type=int, default=1, help="server worker processes (all of them)")
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=3, help="rounds of every server; medians are reported")
    args = ap.parse_args()
    for tool in ("wrk", "nginx"):
        if not shutil.which(tool):
            sys.exit(f"{tool} not found: run `make setup` (installs Debian's wrk and nginx-light)")

    rounds = []
    with tempfile.TemporaryDirectory() as tmpdir:
        mix = write_mix_script(Path(tmpdir) / "mix.lua")
        for r in range(args.rounds):
            print(f"round {r + 1}/{args.rounds}", flush=True)
            rounds.append(one_round(Path(tmpdir) / f"r{r}", args, mix))

    # Per server, the round with its median req/s (its latencies are that run's); each ratio is
    # the median of the rounds' own ratios (this box's speed drifts between rounds).
    results = {name: sorted((r[name] for r in rounds), key=lambda x: x["rps"])[len(rounds) // 2] for name in rounds[0]}

    def ratio(a: str, b: str) -> float:
        return statistics.median(r[a]["rps"] / r[b]["rps"] for r in rounds)

    half = results[HALF]
    print(f"\n{args.workers} worker(s), wrk -t2 -c{args.connections} -d{args.duration}s, loopback, same box, ", end="")
    print(f"median of {args.rounds} round(s)\n")
    print("| server | req/s | p50 ms | p99 ms | req/s of each round |")
    print("|---|---|---|---|---|")
    for name, r in results.items():
        each = ", ".join(f"{x[name]['rps']:,.0f}" for x in rounds)
        print(f"| {name} | {r['rps']:,.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {each} |")
    ratios = {
        "collector / nginx": ratio(COLLECTOR, NGINX),
        "collector / FastAPI route": ratio(COLLECTOR, FASTAPI),
        "p99 at half max rate (ms)": half["p99_ms"],
        "granian / uvicorn": ratio(COLLECTOR, UVICORN),
        "RSGI / ASGI on granian": ratio(COLLECTOR, GRANIAN_ASGI),
        "empty ASGI app / nginx": ratio("empty ASGI app on granian", NGINX),
        "empty RSGI app / nginx": ratio("empty RSGI app on granian", NGINX),
    }
    print()
    print(f"- collector / nginx = {ratios['collector / nginx']:.2f}x (target >= 0.25x)")
    print(f"- collector / FastAPI route = {ratios['collector / FastAPI route']:.2f}x (target >= 3x)")
    print(f"- collector p99 at {half['rps']:,.0f} req/s (half of max) = {half['p99_ms']:.2f} ms (target <= 10 ms)")
    print(f"- collector on granian (the default) / on uvicorn = {ratios['granian / uvicorn']:.2f}x")
    print(f"- collector on granian: RSGI (the default) / ASGI = {ratios['RSGI / ASGI on granian']:.2f}x")
    print(
        f"- the server's floor / nginx: empty ASGI app {ratios['empty ASGI app / nginx']:.2f}x, "
        f"empty RSGI app {ratios['empty RSGI app / nginx']:.2f}x"
    )
    failed = {name: r for x in rounds for name, r in x.items() if r["non2xx"] or r["socket_errors"]}
    if failed:  # a run that answered errors measured something else than the pixel
        sys.exit(f"INVALID: errors during {', '.join(failed)}: {failed}")
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / f"collector_http-w{args.workers}.json").write_text(
        json.dumps(
            {"args": vars(args), "results": results, "rounds": rounds, "ratios": ratios, "cpus": os.cpu_count()},
            indent=2,
        )
    )


if __name__ == "__main__":
    main()

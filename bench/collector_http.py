"""HTTP benchmark of the collector, with wrk on loopback, in one run:

  1. nginx `empty_gif` with a JSON access log: the ceiling for answering a pixel on this box;
  2. a plain FastAPI route doing the collector's work (bench/fastapi_baseline.py);
  3. the collector (raw-ASGI /p.gif in front of FastAPI) with the Kafka hand-off on
     (a real tansu broker and the lander running, so retain-until-landed is exercised too).

Each is loaded at full speed (max req/s, p50/p99), then the collector is loaded again at half
of its max rate (wrk paced by a Lua delay) to read its p99 there. Prints a markdown table and
the ratios; writes bench/results/collector_http-w<workers>.json. The collector runs on its
default server (granian) and again on uvicorn (PIXEL_COLLECTOR_SERVER=uvicorn).

    .venv/bin/python bench/collector_http.py [--duration 10] [--workers 1] [--connections 64]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
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
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT)
    try:
        wait_for_port("127.0.0.1", settings.collector_port, 30)
        time.sleep(1)
        return wrk(f"http://127.0.0.1:{settings.collector_port}", duration, connections, script)
    finally:
        proc.terminate()
        proc.wait(30)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=int, default=10, help="seconds per load run")
    ap.add_argument("--workers", type=int, default=1, help="server worker processes (all three)")
    ap.add_argument("--connections", type=int, default=64)
    args = ap.parse_args()
    for tool in ("wrk", "nginx"):
        if not shutil.which(tool):
            sys.exit(f"{tool} not found: run `make setup` (installs Debian's wrk and nginx-light)")

    results = {}
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        mix = write_mix_script(tmp / "mix.lua")
        print(f"nginx empty_gif ({args.workers} worker(s)) ...", flush=True)
        (tmp / "nginx").mkdir()
        results["nginx empty_gif + JSON log"] = run_nginx(
            tmp / "nginx", args.workers, args.duration, args.connections, mix
        )

        settings = make_settings(tmp / "data", collector_workers=args.workers)
        broker = Broker(settings).start()
        lander = Service("lander", settings, tmp).start()
        try:
            print("plain FastAPI route, same work ...", flush=True)
            results["FastAPI route (same work)"] = run_uvicorn_baseline(settings, args.duration, args.connections, mix)
            print("collector (raw ASGI + Kafka hand-off) ...", flush=True)
            collector = Service("collector", settings, tmp).start()
            try:
                time.sleep(1)
                url = f"http://127.0.0.1:{settings.collector_port}"
                full = wrk(url, args.duration, args.connections, mix)
                results["collector (raw ASGI + Kafka)"] = full
                half_rate = full["rps"] / 2
                paced = write_mix_script(tmp / "paced.lua", int(args.connections * 1000 / half_rate))
                print(f"collector paced at ~{half_rate:.0f} req/s ...", flush=True)
                results["collector at half max rate"] = wrk(url, args.duration, args.connections, paced)
            finally:
                collector.stop()
            print("collector on uvicorn (PIXEL_COLLECTOR_SERVER=uvicorn) ...", flush=True)
            settings.collector_server = "uvicorn"
            collector = Service("collector", settings, tmp).start()
            try:
                time.sleep(1)
                results["collector on uvicorn"] = wrk(url, args.duration, args.connections, mix)
            finally:
                collector.stop()
        finally:
            lander.stop()
            broker.kill()

    nginx, fastapi, coll = (
        results[k] for k in ("nginx empty_gif + JSON log", "FastAPI route (same work)", "collector (raw ASGI + Kafka)")
    )
    half = results["collector at half max rate"]
    print(f"\n{args.workers} worker(s), wrk -t2 -c{args.connections} -d{args.duration}s, loopback, same box\n")
    print("| server | req/s | p50 ms | p99 ms | non-2xx |")
    print("|---|---|---|---|---|")
    for name, r in results.items():
        print(f"| {name} | {r['rps']:,.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['non2xx']} |")
    ratios = {
        "collector / nginx": coll["rps"] / nginx["rps"],
        "collector / FastAPI route": coll["rps"] / fastapi["rps"],
        "p99 at half max rate (ms)": half["p99_ms"],
        "granian / uvicorn": coll["rps"] / results["collector on uvicorn"]["rps"],
    }
    print()
    print(f"- collector / nginx = {ratios['collector / nginx']:.2f}x (target >= 0.25x)")
    print(f"- collector / FastAPI route = {ratios['collector / FastAPI route']:.2f}x (target >= 3x)")
    print(f"- collector p99 at {half['rps']:,.0f} req/s (half of max) = {half['p99_ms']:.2f} ms (target <= 10 ms)")
    print(f"- collector on granian (the default) / on uvicorn = {ratios['granian / uvicorn']:.2f}x")
    failed = {name: r for name, r in results.items() if r["non2xx"] or r["socket_errors"]}
    if failed:  # a run that answered errors measured something else than the pixel
        sys.exit(f"INVALID: errors during {', '.join(failed)}: {failed}")
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / f"collector_http-w{args.workers}.json").write_text(
        json.dumps({"args": vars(args), "results": results, "ratios": ratios, "cpus": os.cpu_count()}, indent=2)
    )


if __name__ == "__main__":
    main()

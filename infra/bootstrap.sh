#!/usr/bin/env bash
# Set up everything from nothing: the venv, the Python packages, and the engine binaries.
# Idempotent: re-running on a set-up machine takes a few seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
"$PYTHON" -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required (apache-flink 2.3)"' \
  || { echo "error: need Python 3.11 (set PYTHON=/path/to/python3.11)" >&2; exit 1; }
java -version >/dev/null 2>&1 || { echo "error: Java 17 is required for Flink and Spark (apt-get install openjdk-17-jre-headless)" >&2; exit 1; }

if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv"
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.installed-$(cat setup.cfg infra/requirements-override.txt | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ]; then
  echo "==> installing Python packages (first time: a few minutes, ~2 GB)"
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e '.[dev]'
  .venv/bin/python -m pip install --quiet --no-deps -r infra/requirements-override.txt
  rm -f .venv/.installed-* && touch "$stamp"
fi

# System tools used by the test suite and benchmarks (Debian packages).
need_apt=()
command -v wrk >/dev/null 2>&1 || need_apt+=(wrk)
command -v nginx >/dev/null 2>&1 || need_apt+=(nginx-light)
command -v docker-compose >/dev/null 2>&1 || need_apt+=(docker-compose)
command -v prometheus >/dev/null 2>&1 || need_apt+=(prometheus)  # the monitoring test's server and promtool
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)  # the dashboard's browser tests
command -v chromedriver >/dev/null 2>&1 || need_apt+=(chromium-driver)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "==> apt-get install ${need_apt[*]}"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  else
    echo "warning: missing ${need_apt[*]} (Debian packages); the tests that need them will be skipped" >&2
  fi
fi

echo "==> fetching engines (pinned, sha256-verified)"
.venv/bin/python -m infra.tansu >/dev/null
.venv/bin/python -m infra.flink >/dev/null
.venv/bin/python -m infra.geo >/dev/null
.venv/bin/python -m infra.mapdata >/dev/null
echo "==> setup done"

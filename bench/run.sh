#!/usr/bin/env bash
# urk vs wrk against nginx on this machine; see bench/bench.py for what it
# measures. Usage: bash bench/run.sh [--rounds N] [--seconds S] [--only NAME,...]
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
[ -x /usr/sbin/nginx ] || need+=(nginx-light)
command -v wrk >/dev/null || need+=(wrk)
command -v strace >/dev/null || need+=(strace)
command -v taskset >/dev/null || need+=(util-linux)
[ -x /usr/bin/time ] || need+=(time)
if [ ${#need[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need[@]}" >/dev/null
fi
cargo build --release -q -p urk
ulimit -n "$(ulimit -Hn)"
exec python3 bench/bench.py "$@"

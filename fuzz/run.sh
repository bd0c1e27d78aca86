#!/usr/bin/env bash
# Fuzzes the response framer, the HTTP/2 frame reader and the HPACK decoder
# (against nghttp2's) with cargo-fuzz (libFuzzer): each target for
# SECONDS (default 60). Usage: bash fuzz/run.sh [SECONDS]
# cargo-fuzz wants a nightly compiler; RUSTC_BOOTSTRAP lets the stable one
# accept the sanitizer flags. A crash leaves its input in fuzz/artifacts/;
# add it to crates/proto/tests/framer.rs as a regression case.
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-60}"
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
export RUSTC_BOOTSTRAP=1
for target in framer_whole framer_split hpack_vs_nghttp2 frames_split; do
    cargo fuzz run "$target" -- -max_total_time="$secs" -rss_limit_mb=1024 2>&1 | tail -n 3
done

#!/bin/sh
# For the bench's URK_BASELINE: runs urk (URK_BIN, default target/release/urk)
# with every argument but --kernel-timestamps, so that a scenario that asks
# for the flag has the same build without it in the same rounds.
bin=${URK_BIN:-$(dirname "$0")/../target/release/urk}
for a in "$@"; do
    shift
    [ "$a" = "--kernel-timestamps" ] || set -- "$@" "$a"
done
exec "$bin" "$@"

# urk's tasks. Every recipe calls a script that also runs without just.

# Run every test (what CI runs after its lints).
test:
    cargo test --workspace

# urk's main job against the bundled server: 5 s, 50 connections.
demo:
    cargo run --release --example demo

# urk vs wrk against nginx, pinned, alternating; writes bench-results/.
bench *ARGS:
    bash bench/run.sh {{ARGS}}

# Lints, docs and tests, as CI runs them.
ci:
    bash .ci/run

# Fuzz the response framer (cargo-fuzz), each target for SECONDS.
fuzz SECONDS="60":
    bash fuzz/run.sh {{SECONDS}}

# Boot Debian's 5.10 and 6.1 kernels under qemu and check the io level ladder.
test-kernels:
    bash tests/kernels/run.sh

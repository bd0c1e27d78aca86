# urk in a container: a build stage with the Rust toolchain, and a small
# Debian runtime with urk as the entrypoint.
#
#   docker build -t urk .
#   docker run --rm --network host urk -t2 -c50 -d10s http://127.0.0.1:8080/
#
# Under Docker's default seccomp profile io_uring is blocked: urk says so in
# one line and runs on epoll. For the ring, run with
# `--security-opt seccomp=unconfined` (or a profile that allows
# io_uring_setup, io_uring_enter and io_uring_register).

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p urk \
    && strip target/release/urk

FROM debian:bookworm-slim
# CA certificates for https:// targets; the shell stays, so a job can send
# each report where it wants (see deploy/kubernetes).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/urk /usr/local/bin/urk
USER 65534:65534
ENTRYPOINT ["/usr/local/bin/urk"]

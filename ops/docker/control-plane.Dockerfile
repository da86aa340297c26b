# The control plane, built from the workspace root: docker build -f ops/docker/control-plane.Dockerfile .
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p control-plane \
 && cp target/release/control-plane /control-plane

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 nexacore
COPY --from=build /control-plane /usr/local/bin/control-plane
USER nexacore
ENV NEXACORE_LISTEN=0.0.0.0:8080 \
    NEXACORE_LOG_FORMAT=json
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/control-plane"]

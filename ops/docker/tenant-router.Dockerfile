# The tenant router, built from the workspace root: docker build -f ops/docker/tenant-router.Dockerfile .
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p tenant-router \
 && cp target/release/tenant-router /tenant-router

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 nexacore
COPY --from=build /tenant-router /usr/local/bin/tenant-router
USER nexacore
ENV NEXACORE_LISTEN=0.0.0.0:8081 \
    NEXACORE_LOG_FORMAT=json
EXPOSE 8081
ENTRYPOINT ["/usr/local/bin/tenant-router"]

# rfm scoring service: build with the project's own Makefile, train on the
# bundled data, run as a non-root user on port 8080.
#   docker build -t rfm .
#   docker run -p 8080:8080 -e RFM_API_TOKENS=change-me rfm
# The web app is at http://localhost:8080/ui/ (docs/ui.md).
# Mount your own models with -v /path/to/models:/app/models:ro, and for
# HTTPS a config naming mounted certificate files (docs/operations.md).

FROM debian:bookworm-slim AS build
WORKDIR /src
COPY . .
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      make gcc g++ libc6-dev pkg-config ca-certificates libmicrohttpd-dev libjansson-dev \
      libgsl-dev libfaiss-dev libopenblas-dev libyaml-dev zlib1g-dev libisal-dev libpq-dev libsqlite3-dev \
      libzstd-dev libdouble-conversion-dev librdkafka-dev libhiredis-dev libxgboost-dev \
      nodejs npm \
 && rm -rf /var/lib/apt/lists/* \
 && npm ci --no-audit --no-fund --ignore-scripts \
 && make clean all \
 && bin/rfm-train --config config/rfm.yaml --quiet

FROM debian:bookworm-slim AS runtime
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      libmicrohttpd12 libjansson4 libgsl27 libgslcblas0 libyaml-0-2 zlib1g libisal2 libzstd1 libdouble-conversion3 \
      libopenblas0-pthread libgomp1 libstdc++6 libpq5 libsqlite3-0 librdkafka1 libhiredis0.14 \
      libxgboost0 curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --home /app --shell /usr/sbin/nologin rfm
WORKDIR /app
COPY --from=build /src/bin/rfm-serve /src/bin/rfm-train /src/bin/rfm-score /app/bin/
COPY --from=build /src/config /app/config
COPY --from=build /src/openapi.yaml /app/openapi.yaml
# The /ui/ web app (docs/ui.md): found beside bin/ as /app/ui-assets.
COPY --from=build /src/build/ui-assets /app/ui-assets
COPY --from=build /src/models /app/models
# The live state (state.path, docs/events.md) is seeded once from the file
# the models were trained on; the store lives in a volume the user owns.
COPY --from=build /src/data/online_retail.csv.gz /app/data/online_retail.csv.gz
RUN mkdir -p /app/state && chown rfm /app/state
VOLUME /app/state
USER rfm
EXPOSE 8080
# Plain HTTP, or HTTPS when server.tls_cert_file is set (the certificate is
# for the public name, so the local check does not verify it).
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD curl -fsS http://127.0.0.1:8080/health || curl -fsSk https://127.0.0.1:8080/health || exit 1
# RFM_API_TOKENS (comma-separated) must be set at run time.
CMD ["bin/rfm-serve", "--config", "config/rfm.yaml", "--host", "0.0.0.0", "--port", "8080"]

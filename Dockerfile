# syntax=docker/dockerfile:1
# simverify: a Rust build against the libtorch that the torch wheel ships, then a slim runtime with only
# the binary, the libtorch libraries it links, and the bundled models.

ARG RUST_VERSION=1.95
ARG TORCH_VERSION=2.11.0
# The CPU-only wheel (`2.11.0+cpu`): the default wheel pulls about 3 GB of CUDA libraries, and the
# libtorch it links pulls libcudart and libcupti into the image, which runs on CPU.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu

FROM rust:${RUST_VERSION}-bookworm AS builder
ARG TORCH_VERSION
ARG TORCH_INDEX_URL
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv libfontconfig1-dev libturbojpeg0-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check \
        --index-url "$TORCH_INDEX_URL" "torch==$TORCH_VERSION"
# torch-sys asks the first python3 on PATH where libtorch is.
ENV PATH=/opt/venv/bin:$PATH \
    LIBTORCH_USE_PYTORCH=1

WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY src src
# The store's SQL migrations, compiled in with include_str!.
COPY migrations migrations
COPY examples examples
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin simverify \
    && cp target/release/simverify /usr/local/bin/simverify
# Exactly the torch libraries the binary loads (ldd follows them transitively), nothing else: the
# image runs on CPU. scripts/image-smoke copies the same set into its root.
RUN mkdir -p /opt/libtorch/lib \
    && ldd /usr/local/bin/simverify | awk '$3 ~ /^\/opt\/venv\// { print $3 }' | xargs -r cp -L -t /opt/libtorch/lib \
    && ls -l /opt/libtorch/lib

# The binary needs glibc and libstdc++ (both in the base image), libturbojpeg and the torch libraries copied below;
# TLS roots for URL fetching are compiled in (rustls with webpki roots).
# scripts/image-smoke reproduces this stage in a debootstrap root and runs it: keep the two in step.
FROM debian:bookworm-slim AS runtime
# libjpeg-turbo's TurboJPEG library, which decodes JPEGs at reduced scale.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libturbojpeg0 \
    && rm -rf /var/lib/apt/lists/*
# The subject store (SQLite, by default) lives in /var/lib/simverify: owned by the runtime user, who may
# write nowhere else, and a volume, so that enrolments outlive the container.
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin simverify \
    && install -d -o simverify -g simverify -m 0750 /var/lib/simverify
COPY --from=builder /opt/libtorch/lib /opt/libtorch/lib
COPY --from=builder /usr/local/bin/simverify /usr/local/bin/simverify
COPY models /app/models
WORKDIR /app
# The build's rpath points into the builder's venv, which is not here; this is where the libraries are.
ENV LD_LIBRARY_PATH=/opt/libtorch/lib \
    SIMVERIFY_LISTEN=0.0.0.0:8080 \
    SIMVERIFY_MODEL_DIR=/app/models \
    SIMVERIFY_DATA_DIR=/var/lib/simverify \
    SIMVERIFY_SERVER=http://127.0.0.1:8080
USER simverify
VOLUME /var/lib/simverify
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD ["simverify", "healthcheck", "--timeout-secs", "4"]
ENTRYPOINT ["simverify"]
CMD ["serve"]

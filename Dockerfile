# The llmvolley image the Kubernetes manifests in deploy/kubernetes run.
#   docker build -t ghcr.io/your-org/llmvolley:0.1.0 .
# Build stage: the pinned toolchain builds the locked dependency set.
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked && strip target/release/llmvolley

# Runtime: a small Debian with a shell (the Job's command maps exit 1, "finished with some requests
# not ok", to success) and no compiler. TLS roots are compiled into the binary (webpki-roots), so
# no CA bundle is needed.
FROM debian:bookworm-slim
RUN useradd --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin llmvolley \
    && mkdir /data && chown llmvolley:llmvolley /data
COPY --from=build /src/target/release/llmvolley /usr/local/bin/llmvolley
USER 10001:10001
WORKDIR /data
ENTRYPOINT ["llmvolley"]
CMD ["--help"]

# idprune as a container, for GitLab, Jenkins and Kubernetes: a static musl binary on `scratch`,
# run as a non-root user, with no shell and the binary as entrypoint.
#
#   docker run --rm -e SEGMENT_ACCESS_TOKEN -v "$PWD:/work" ghcr.io/idprune/idprune:0.1.0 plan plans/x.yaml
#
# Built, tagged by version and pinned by digest by .github/workflows/publish-image.yml on each
# release tag. TLS roots are compiled in (rustls with webpki-roots), so no CA bundle is needed.

# ---- build: Alpine's Rust targets musl, where a binary is static by default -----------------
FROM rust:1.89-alpine3.22 AS build
# gcc and musl-dev build the bundled SQLite; Alpine's versions follow the pinned 3.22 branch.
# hadolint ignore=DL3018
RUN apk add --no-cache gcc musl-dev
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY examples ./examples
COPY tests ./tests
RUN cargo build --locked --release --bin idprune \
    && mkdir -p /out/work \
    && cp target/release/idprune /out/idprune \
    && /out/idprune --version

# ---- run: nothing but the binary ------------------------------------------------------------
FROM scratch
COPY --from=build /out/idprune /idprune
# The working directory for manifests and state files, owned by the runtime user; mount the
# repository of manifests over it.
COPY --from=build --chown=65532:65532 /out/work /work
USER 65532:65532
WORKDIR /work
ENTRYPOINT ["/idprune"]

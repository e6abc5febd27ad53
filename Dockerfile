# syntax=docker/dockerfile:1
#
# The image of `emr-driver` for the nightly CronJob (deploy/k8s): the driver binary plus the
# files it deploys and reads at run time (step templates, default config, the PySpark job
# package, the EMR bootstrap script, the warehouse SQL). No Java or Spark: EMR runs Spark.
#
#   docker build --build-arg RDS_CA_BUNDLE_SHA256=<digest> -t emr-driver:0.1.0 .
#   docker run --rm emr-driver:0.1.0 --help
#
# NOTE: this image has never been built in the project's own environment: its development
# machines and CI have a Docker client but no Docker engine. Reviewed by eye against hadolint's
# rules (pinned base images, --no-install-recommends, apt lists removed, non-root numeric USER,
# exec-form ENTRYPOINT). Build it where an engine runs, e.g. a release pipeline that pushes to
# ECR.

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

# --- build -----------------------------------------------------------------------------------
FROM rust:${RUST_VERSION}-slim-${DEBIAN_RELEASE} AS builder

# native-tls (PostgreSQL / Redshift over TLS) links OpenSSL. Debian package versions are not
# pinned (DL3008): the base image tag fixes the Debian release, and security updates within
# it are wanted.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends pkg-config libssl-dev \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY driver ./driver
# The crate compiles these in (include_str!: the warehouse and Redshift SQL, the five
# questions, the default config in its tests). scripts/check-docker-context.py, run by
# scripts/test.sh, builds the crate from exactly the files this stage copies.
COPY sql ./sql
COPY config ./config
# The cache mounts keep the registry and target directory between builds (BuildKit).
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p emr-driver \
 && install -m 0755 target/release/emr-driver /usr/local/bin/emr-driver

# --- run -------------------------------------------------------------------------------------
FROM debian:${DEBIAN_RELEASE}-slim AS runtime

# ca-certificates for TLS to AWS and the databases; libssl3 for native-tls; coreutils' GNU
# `date` (already in the base image) computes the run date in the CronJob.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libssl3 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 emr \
 && useradd --system --uid 10001 --gid emr --home-dir /app --no-create-home --shell /usr/sbin/nologin emr

WORKDIR /app
COPY --from=builder /usr/local/bin/emr-driver /usr/local/bin/emr-driver
# Owned by root and read-only for the driver's user: the image's content cannot be changed at
# run time (the CronJob also mounts the root filesystem read-only).
COPY driver/templates ./driver/templates
COPY config ./config
COPY pyspark_jobs ./pyspark_jobs
COPY bootstrap ./bootstrap
COPY sql ./sql
# The AWS RDS CA bundle (every region's CA): the source database is reached with
# sslmode=verify-full&sslrootcert=/app/certs/rds-global-bundle.pem (scripts/config-from-terraform.py
# writes that URL), and it is what makes an IAM token or a password go only to the real RDS.
# Downloaded at build time from AWS's documented location
# (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/UsingWithRDS.SSL.html) and verified
# against the sha256 digest given as a build argument: the digest has no default because it was
# never checked where this file was written (no network to AWS there), and a wrong default
# would be worse than none. docs/deploy-aws.md ("The image") says how to get and check it:
#   docker build --build-arg RDS_CA_BUNDLE_SHA256=<64 hex digits> ...
# BuildKit refuses the file when its digest differs (AWS adds a CA: check the new bundle, pass
# its digest). Redshift's certificates chain to the Amazon roots in ca-certificates.
ARG RDS_CA_BUNDLE_SHA256
RUN case "${RDS_CA_BUNDLE_SHA256}" in \
      *[!0-9a-f]*|"") echo "pass --build-arg RDS_CA_BUNDLE_SHA256=<sha256 of global-bundle.pem, 64 lower-case hex digits> (docs/deploy-aws.md)" >&2; exit 1 ;; \
    esac \
 && [ "${#RDS_CA_BUNDLE_SHA256}" -eq 64 ] \
 || { echo "RDS_CA_BUNDLE_SHA256 must be 64 hex digits" >&2; exit 1; }
ADD --checksum=sha256:${RDS_CA_BUNDLE_SHA256} --chmod=0444 https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem /app/certs/rds-global-bundle.pem

ENV TMPDIR=/tmp \
    EMR_DRIVER_CONFIG=/app/config/pipeline.toml

USER 10001:10001
ENTRYPOINT ["/usr/local/bin/emr-driver"]
CMD ["--help"]

# syntax=docker/dockerfile:1
# The Flink image: the official Flink distribution (its entrypoint is what docker-compose and the Flink Kubernetes
# Operator start), plus Python and the PyFlink environment from uv.lock for the Python UDFs, the project
# (flink_jobs/, hybrid_platform) at the same path as in the platform image, and the jars of jars.toml in lib/.
# Nothing is downloaded when a container starts.
#
#   docker build -f infra/docker/flink.Dockerfile -t hybrid-platform-flink:0.1.0 .
#
# FLINK_VERSION = apache-flink in uv.lock; the S3 file system for checkpoints/savepoints ships in the image's
# opt/ and is enabled as a plugin below. tests/unit/test_infra.py keeps these ARGs equal to the matrix.
ARG FLINK_VERSION=2.1.3
# Pinned by digest (the tag alone can be rebuilt): the index digest of flink:2.1.3-scala_2.12-java17 as recorded
# by docker-library/repo-info, repos/flink/remote/2.1.3-scala_2.12-java17.md at commit
# 19c193b9fd144931441c0a20aa9591a5e1ca84cc (built 2026-08-21). A new FLINK_VERSION needs the digest of its own
# tag (tests/unit/test_infra_common_security.py keeps the two together).
FROM flink:${FLINK_VERSION}-scala_2.12-java17@sha256:cc557bbe316d804e83195717a41788dc1ddb9a965887bd0ab83d148480a7802d

ARG FLINK_VERSION=2.1.3
ARG PYTHON_VERSION=3.11
ARG UV_VERSION=0.13.8
ENV HDP_APP=/opt/hybrid-platform \
    HDP_HOME=/opt/hdp/home \
    HDP_JAR_CACHE=/opt/hdp/jars \
    HDP_ENV=cluster \
    UV_LINK_MODE=copy \
    UV_PYTHON_INSTALL_DIR=/opt/python \
    PYTHONUNBUFFERED=1

USER root
# The base image's Python is the distribution's, not the matrix's 3.11: uv installs a standalone CPython 3.11
# at build time (the one download of this build besides packages), then the locked PyFlink environment.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3-pip python3-venv \
 && rm -rf /var/lib/apt/lists/* \
 && python3 -m venv /opt/uv && /opt/uv/bin/pip install --no-cache-dir "uv==${UV_VERSION}" \
 && /opt/uv/bin/uv python install "${PYTHON_VERSION}"

WORKDIR ${HDP_APP}
COPY pyproject.toml uv.lock README.md ./
RUN UV_PROJECT_ENVIRONMENT=.venv-flink /opt/uv/bin/uv sync --locked --no-default-groups --group flink \
      --no-install-project --python "${PYTHON_VERSION}"
COPY . .
RUN UV_PROJECT_ENVIRONMENT=.venv-flink /opt/uv/bin/uv sync --locked --no-default-groups --group flink \
      --python "${PYTHON_VERSION}" \
 # jars.toml's flink + cluster sets (Kafka connector, Iceberg runtime, Hadoop client, Postgres driver, S3FileIO),
 # verified by SHA-256 through the project's own `hdp jars`, then into Flink's lib/.
 && .venv-flink/bin/hdp jars --set flink --set cluster \
 && .venv-flink/bin/python -c "from hybrid_platform import jars; from pathlib import Path; import shutil; \
[shutil.copy(p, '/opt/flink/lib/') for s in ('flink', 'cluster') for p in jars.classpath(Path('${HDP_JAR_CACHE}'), s)]" \
 # flink-python (Python UDFs on the TaskManager) and the S3 file system plugin both ship in the image's opt/.
 && cp /opt/flink/opt/flink-python-${FLINK_VERSION}.jar /opt/flink/lib/ \
 && mkdir -p /opt/flink/plugins/s3-fs-hadoop && cp /opt/flink/opt/flink-s3-fs-hadoop-${FLINK_VERSION}.jar /opt/flink/plugins/s3-fs-hadoop/ \
 && mkdir -p "${HDP_HOME}" && chown -R flink:flink /opt/hdp /opt/flink/lib /opt/flink/plugins

USER flink
# python.executable / python.client.executable point here (FLINK_PROPERTIES in compose, flinkConfiguration on k8s).
ENV HDP_FLINK_PYTHON=${HDP_APP}/.venv-flink/bin/python

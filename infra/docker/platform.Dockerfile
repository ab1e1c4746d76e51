# syntax=docker/dockerfile:1
# The platform image: Airflow 3 (api-server, scheduler, dag-processor, triggerer), the Spark master, worker and
# driver (pyspark's own distribution: spark-class/spark-submit), dbt, GX, pyiceberg and the PyFlink client --
# the same two environments `make setup` builds, installed from uv.lock, with the jars of jars.toml baked in.
# Nothing is downloaded when a container starts.
#
#   docker build -f infra/docker/platform.Dockerfile -t hybrid-platform:0.1.0 .
#
# Versions come from the one matrix: PYTHON_VERSION = the Makefile's, UV_VERSION = the Makefile's, every Python
# package from uv.lock (--locked), every jar from jars.toml (checked by SHA-256). tests/unit/test_infra.py keeps
# these ARGs equal to the matrix.
ARG PYTHON_VERSION=3.11
# Pinned by digest (the tag alone can be rebuilt): the index digest of python:3.11-slim-bookworm as recorded by
# docker-library/repo-info, repos/python/remote/3.11-slim-bookworm.md at commit
# 33a22f41ac7bf613bc03380b0317536a9a7fb5e8 (Python 3.11.16, built 2026-08-25). A new PYTHON_VERSION needs the
# digest of its own tag (tests/unit/test_infra_common_security.py keeps the two together).
FROM python:${PYTHON_VERSION}-slim-bookworm@sha256:0bee7276f83efd4a1ee05bbbf4281d95ed28e079220a9457f25a93e3f1e3c31b

# An ARG before FROM is visible to FROM only: declare it again for the RUN steps below.
ARG PYTHON_VERSION
ARG UV_VERSION=0.13.8
ENV HDP_APP=/opt/hybrid-platform \
    HDP_HOME=/opt/hdp/home \
    HDP_JAR_CACHE=/opt/hdp/jars \
    HDP_ENV=cluster \
    JAVA_HOME=/usr/lib/jvm/java-17 \
    UV_PYTHON_DOWNLOADS=never \
    UV_LINK_MODE=copy \
    PYTHONUNBUFFERED=1
# .venv first: airflow, hdp, spark-submit and spark-class resolve from the Spark/Airflow environment.
ENV PATH=${HDP_APP}/.venv/bin:${PATH}

# Java 17 (all three JVM engines support it), tini as PID 1, procps for Spark's scripts.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends openjdk-17-jre-headless tini procps \
 && ln -s "/usr/lib/jvm/java-17-openjdk-$(dpkg --print-architecture)" /usr/lib/jvm/java-17 \
 && rm -rf /var/lib/apt/lists/* \
 && pip install --no-cache-dir "uv==${UV_VERSION}" \
 && groupadd --gid 50000 hdp && useradd --uid 50000 --gid 0 --groups hdp --home-dir /opt/hdp --create-home hdp

WORKDIR ${HDP_APP}
# Dependencies first (a layer that survives source edits), then the project itself (editable: REPO_ROOT is here,
# so dags/, dbt/, quality/, flink_jobs/ resolve exactly as in a clone).
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --locked --no-dev --no-install-project --python "${PYTHON_VERSION}" \
 && UV_PROJECT_ENVIRONMENT=.venv-flink uv sync --locked --no-default-groups --group flink --no-install-project \
      --python "${PYTHON_VERSION}"
COPY . .
RUN uv sync --locked --no-dev --python "${PYTHON_VERSION}" \
 && UV_PROJECT_ENVIRONMENT=.venv-flink uv sync --locked --no-default-groups --group flink --python "${PYTHON_VERSION}" \
 # The jars of jars.toml, verified by SHA-256, into HDP_JAR_CACHE: Spark's, Flink's (the client) and the cluster
 # set (Postgres JDBC driver, Iceberg S3FileIO). `hdp jars` is the same code path as `make setup`.
 && hdp jars --set spark --set flink --set cluster \
 && mkdir -p "${HDP_HOME}" && chown -R 50000:0 /opt/hdp && chmod -R g+rwX /opt/hdp

# The source revision trained models record (.git is not in the image): docker build --build-arg
# CODE_VERSION="$(git rev-parse HEAD)". Last, so a new revision rebuilds no layer above.
ARG CODE_VERSION
ENV HDP_CODE_VERSION=${CODE_VERSION:-unknown}

USER 50000
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["hdp", "--help"]

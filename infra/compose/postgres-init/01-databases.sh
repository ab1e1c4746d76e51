#!/bin/bash
# Runs once, on the first start of an empty data volume (the postgres image's /docker-entrypoint-initdb.d):
# one database per use, each owned by its own role, passwords from the environment (infra/compose/.env).
set -euo pipefail
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" \
  -v airflow_pw="$AIRFLOW_DB_PASSWORD" -v catalog_pw="$CATALOG_DB_PASSWORD" <<'SQL'
CREATE ROLE airflow LOGIN PASSWORD :'airflow_pw';
CREATE DATABASE airflow OWNER airflow;
CREATE ROLE iceberg LOGIN PASSWORD :'catalog_pw';
CREATE DATABASE iceberg OWNER iceberg;
SQL

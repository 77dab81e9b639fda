#!/usr/bin/env bash
# Installs what `make cluster` and `make test-cluster` need from the machine: Debian's
# PostgreSQL server binaries (initdb, pg_ctl, postgres, psql), from apt when no usable
# set is found (stacks/cluster/postgres.py find_postgres: $POSTGRES_BINDIR, pg_config,
# /usr/lib/postgresql/N/bin, PATH). No system service is set up or started: the
# cluster runs its own PostgreSQL under .data/. Quick and idempotent when present.
# Root installs with apt-get directly; anyone else needs sudo for the apt step.
set -euo pipefail

python="${1:-python3}"
found() { "$python" -c 'from stacks.cluster.postgres import find_postgres; raise SystemExit(find_postgres() is None)'; }

if ! found; then
    sudo=()
    [[ "$(id -u)" -eq 0 ]] || sudo=(sudo)
    echo "postgres-deps: installing Debian's postgresql (apt-get)" >&2
    "${sudo[@]}" apt-get update -q
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql
    found || { echo "postgres-deps: postgresql installed, but initdb/pg_ctl not found" >&2; exit 1; }
fi

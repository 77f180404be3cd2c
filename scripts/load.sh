#!/usr/bin/env bash
# Load figures of `engraft serve` (issue 4), with wrk as the load generator:
#   1. POST /fhir/$convert, the typical record                        (requests/s, p99)
#   2. POST /registry/records, a distinct record per request, durable (records/s)
#   3. fill the store to $RECORDS records (batches of 100 generated records)
#   4. GET /fhir/Observation?patient=... over random patients         (p99)
# and the server's peak RSS. Usage:
#   scripts/load.sh                          # SQLite in a temp dir
#   scripts/load.sh postgres://postgres@127.0.0.1:5432/postgres   # a fresh PostgreSQL db
# Environment: DURATION (default 20s), CONNECTIONS (16), RECORDS (100000).
# Requests are authenticated as production traffic is: a client registered with the built-in
# token endpoint, one bearer token reused by every request (`engraft token`).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-20s}
CONNECTIONS=${CONNECTIONS:-16}
RECORDS=${RECORDS:-100000}
PORT=${PORT:-18080}
cargo build --release --quiet
BIN=target/release/engraft
WORK=$(mktemp -d)
# shellcheck source=load/common.sh
source scripts/load/common.sh
trap 'stop_server; rm -rf "$WORK"' EXIT
start_server "${1:-}"

export RECORD=fixtures/records/ms-rrms-auto-beam-atg.json

echo "== 1. POST /fhir/\$convert ($DURATION, $CONNECTIONS connections)"
wrk_run "$CONNECTIONS" "$DURATION" scripts/load/convert.lua "http://127.0.0.1:$PORT/fhir/\$convert"

echo "== 2. POST /registry/records, one new record per request ($DURATION, $CONNECTIONS connections)"
RUN=$(date +%s) wrk_run "$CONNECTIONS" "$DURATION" scripts/load/post-records.lua \
    "http://127.0.0.1:$PORT/registry/records"

echo "== 3. fill to $RECORDS records"
fill_to "$RECORDS"
echo "patients stored: $(stored_patients)"

echo "== 4. GET /fhir/Observation?patient=... ($DURATION, $CONNECTIONS connections)"
search_patients "$WORK/patients"
PATIENTS="$WORK/patients" wrk_run "$CONNECTIONS" "$DURATION" scripts/load/search.lua "http://127.0.0.1:$PORT"

echo "== server peak RSS: $(peak_rss)"

#!/usr/bin/env bash
# How cost grows with input size and with concurrency (PERFORMANCE.md), in one run:
#   1. `engraft convert` over 1k, 10k and 100k generated records: records/s and peak RSS
#   2. POST /fhir/$convert, the typical record, at 1, 2, 4, 8, 16, 32 and 64 connections:
#      requests/s, p50, p99
#   3. GET /fhir/Observation?patient=... with 1k, 10k and 100k records stored (SQLite, or the
#      PostgreSQL server given): requests/s, p50, p99, at 16 connections
# (bundle sizes 1 to 1,000 entries are in scripts/perf/compare.sh). Usage:
#   scripts/perf/curves.sh [postgres://postgres@127.0.0.1:5432/postgres]
# Environment: DURATION per wrk run (default 10s), MAX_RECORDS (default 100000), STEPS (default
# "1 2 3": which of the three to run).
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION=${DURATION:-10s}
MAX_RECORDS=${MAX_RECORDS:-100000}
STEPS=${STEPS:-1 2 3}
PORT=${PORT:-18081}
command -v /usr/bin/time >/dev/null || apt-get install -y time >/dev/null
cargo build --release --quiet --bin engraft
BIN=target/release/engraft
WORK=$(mktemp -d)
# shellcheck source=../load/common.sh
source scripts/load/common.sh
trap 'stop_server; rm -rf "$WORK"' EXIT

step() { [[ " $STEPS " == *" $1 "* ]]; }

if step 1; then
echo "== 1. engraft convert, one process (validating each Bundle against base R4)"
"$BIN" fixtures generate --count "$MAX_RECORDS" --seed 7 --out "$WORK/all.ndjson"
for n in 1000 10000 100000; do
    (( n <= MAX_RECORDS )) || continue
    head -n "$n" "$WORK/all.ndjson" > "$WORK/records.ndjson"
    /usr/bin/time -f "%e %M" -o "$WORK/time.txt" "$BIN" convert "$WORK/records.ndjson" --compact \
        --now 2026-01-01T00:00:00Z > /dev/null 2> "$WORK/convert.err"
    read -r secs kib < "$WORK/time.txt"
    python3 -c "import sys; n,s,k=int(sys.argv[1]),float(sys.argv[2]),int(sys.argv[3]); print(f'{n:>7,} records: {s:6.2f} s, {n/s:8,.0f} records/s, peak RSS {k/1024:6.1f} MB')" "$n" "$secs" "$kib"
done
rm -f "$WORK/all.ndjson" "$WORK/records.ndjson"
fi

start_server "${1:-}"
export RECORD=fixtures/records/ms-rrms-auto-beam-atg.json
if step 2; then
echo "== 2. POST /fhir/\$convert by connections ($DURATION each)"
for c in 1 2 4 8 16 32 64; do
    echo "-- $c connections"
    wrk_run "$c" "$DURATION" scripts/load/convert.lua "http://127.0.0.1:$PORT/fhir/\$convert"
done
fi

if step 3; then
echo "== 3. GET /fhir/Observation?patient=... by records stored (16 connections, $DURATION each)"
for n in 1000 10000 100000; do
    (( n <= MAX_RECORDS )) || continue
    fill_to "$n"
    echo "-- $(stored_patients) records stored"
    search_patients "$WORK/patients"
    PATIENTS="$WORK/patients" wrk_run 16 "$DURATION" scripts/load/search.lua "http://127.0.0.1:$PORT"
done
fi
echo "== server peak RSS: $(peak_rss)"

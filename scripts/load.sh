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
command -v wrk >/dev/null || { apt-get install -y wrk >/dev/null; }
cargo build --release --quiet
BIN=target/release/engraft
WORK=$(mktemp -d)
trap 'kill $SERVER 2>/dev/null || true; rm -rf "$WORK"' EXIT

if [[ "${1:-}" == postgres* ]]; then
    DB="engraft_load_$(date +%s)"
    psql "$1" -qc "CREATE DATABASE $DB"
    URL="${1%/*}/$DB"
else
    URL="sqlite://$WORK/engraft.db"
fi
echo "store: $URL"
"$BIN" keygen --alg ES384 --kid load-1 --out "$WORK/keys" >/dev/null
cat > "$WORK/engraft.toml" <<TOML
[auth]
token_lifetime_secs = 3600
[[auth.clients]]
client_id = "load"
jwks = "$WORK/keys/load-1.jwks.json"
scopes = ["system/*.cruds"]
TOML
ENGRAFT__STORE__URL="$URL" ENGRAFT__SERVER__BIND="127.0.0.1:$PORT" ENGRAFT__LOG__LEVEL=warn \
    "$BIN" serve --config "$WORK/engraft.toml" > "$WORK/server.out" 2> "$WORK/server.err" &
SERVER=$!
for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.2; done
TOKEN=$("$BIN" token --fhir-base "http://127.0.0.1:$PORT/fhir" --client-id load --kid load-1 \
    --key "$WORK/keys/load-1.key.pem" --scope "system/*.cruds")
export TOKEN
AUTH="Authorization: Bearer $TOKEN"

peak_rss() { awk '/VmHWM/ {print $2/1024 " MB"}' "/proc/$SERVER/status"; }
export RECORD=fixtures/records/ms-rrms-auto-beam-atg.json

echo "== 1. POST /fhir/\$convert ($DURATION, $CONNECTIONS connections)"
wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency -s scripts/load/convert.lua "http://127.0.0.1:$PORT/fhir/\$convert" \
    | grep -E "Requests/sec|99%|50%|Non-2xx"

echo "== 2. POST /registry/records, one new record per request ($DURATION, $CONNECTIONS connections)"
RUN=$(date +%s) wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency -s scripts/load/post-records.lua \
    "http://127.0.0.1:$PORT/registry/records" | grep -E "Requests/sec|99%|50%|Non-2xx"

echo "== 3. fill to $RECORDS records"
STORED=$(curl -s -H "$AUTH" "http://127.0.0.1:$PORT/fhir/Patient?_count=0" | python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])')
NEED=$((RECORDS - STORED))
if (( NEED > 0 )); then
    "$BIN" fixtures generate --count "$NEED" --seed 4242 --out "$WORK/fill.ndjson"
    split -l 100 "$WORK/fill.ndjson" "$WORK/batch."
    START=$(date +%s)
    export AUTH
    ls "$WORK"/batch.* | xargs -P 2 -I{} sh -c \
        "python3 -c 'import sys,json; print(json.dumps([json.loads(l) for l in open(sys.argv[1])]))' {} \
         | curl -sf -o /dev/null -X POST -H 'content-type: application/json' -H \"\$AUTH\" --data-binary @- http://127.0.0.1:$PORT/registry/records \
         || echo 'a batch failed' >&2"
    echo "filled $NEED records in $(( $(date +%s) - START )) s"
fi
curl -s -H "$AUTH" "http://127.0.0.1:$PORT/fhir/Patient?_count=0" | python3 -c 'import json,sys; print("patients stored:", json.load(sys.stdin)["total"])'

echo "== 4. GET /fhir/Observation?patient=... ($DURATION, $CONNECTIONS connections)"
OFFSET=$(( RECORDS / 2 ))
curl -s -H "$AUTH" "http://127.0.0.1:$PORT/fhir/Patient?_count=1000&_offset=$OFFSET" \
    | python3 -c 'import json,sys; [print(e["resource"]["id"]) for e in json.load(sys.stdin)["entry"]]' > "$WORK/patients"
PATIENTS="$WORK/patients" wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency -s scripts/load/search.lua \
    "http://127.0.0.1:$PORT" | grep -E "Requests/sec|99%|50%|Non-2xx"

echo "== server peak RSS: $(peak_rss)"
if [[ "${1:-}" == postgres* ]]; then psql "$1" -qc "DROP DATABASE $DB WITH (FORCE)" || true; fi

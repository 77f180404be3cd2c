# Shared by scripts/load.sh and scripts/perf/curves.sh (source it from the repository root):
# a release `engraft serve` on a store with one registered client and a bearer token, the
# store filled with generated records, and wrk runs.
# Needs: BIN, WORK (a temp dir), PORT. Sets: SERVER (pid), URL, TOKEN, AUTH, DB (PostgreSQL).

command -v wrk >/dev/null || { apt-get install -y wrk >/dev/null; }

# start_server [postgres://...]: SQLite in $WORK unless a PostgreSQL URL is given (a fresh
# database is made on it and dropped by stop_server).
start_server() {
    if [[ "${1:-}" == postgres* ]]; then
        DB="engraft_load_$(date +%s)"
        psql "$1" -qc "CREATE DATABASE $DB"
        PG_ADMIN=$1
        # The database name replaced, the query (sslmode=...) kept.
        local base=${1%%\?*} query=""
        [[ "$1" == *\?* ]] && query="?${1#*\?}"
        URL="${base%/*}/$DB$query"
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
    export AUTH
}

stop_server() {
    kill "$SERVER" 2>/dev/null || true
    wait "$SERVER" 2>/dev/null || true
    if [[ -n "${DB:-}" ]]; then psql "$PG_ADMIN" -qc "DROP DATABASE $DB WITH (FORCE)" || true; fi
}

peak_rss() { awk '/VmHWM/ {print $2/1024 " MB"}' "/proc/$SERVER/status"; }

stored_patients() {
    curl -s -H "$AUTH" "http://127.0.0.1:$PORT/fhir/Patient?_count=0" \
        | python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])'
}

# fill_to N: POSTs generated records in batches of 100 (2 at a time) until N are stored.
fill_to() {
    local need=$(( $1 - $(stored_patients) ))
    (( need > 0 )) || return 0
    rm -f "$WORK"/batch.*
    "$BIN" fixtures generate --count "$need" --seed "$(( 4242 + $1 ))" --out "$WORK/fill.ndjson"
    split -l 100 "$WORK/fill.ndjson" "$WORK/batch."
    local start; start=$(date +%s)
    ls "$WORK"/batch.* | xargs -P 2 -I{} sh -c \
        "python3 -c 'import sys,json; print(json.dumps([json.loads(l) for l in open(sys.argv[1])]))' {} \
         | curl -sf -o /dev/null -X POST -H 'content-type: application/json' -H \"\$AUTH\" --data-binary @- http://127.0.0.1:$PORT/registry/records \
         || echo 'a batch failed' >&2"
    echo "filled $need records in $(( $(date +%s) - start )) s"
}

# search_patients FILE: 1,000 stored Patient ids from the middle of the store.
search_patients() {
    local offset=$(( $(stored_patients) / 2 ))
    curl -s -H "$AUTH" "http://127.0.0.1:$PORT/fhir/Patient?_count=1000&_offset=$offset" \
        | python3 -c 'import json,sys; [print(e["resource"]["id"]) for e in json.load(sys.stdin)["entry"]]' > "$1"
}

# wrk_run CONNECTIONS DURATION SCRIPT URL: prints requests/s, p50, p99 and non-2xx answers.
wrk_run() {
    local threads=$(( $1 < 2 ? $1 : 2 ))
    wrk -t"$threads" -c"$1" -d"$2" --latency -s "$3" "$4" | grep -E "Requests/sec|^ +99%|^ +50%|Non-2xx"
}

#!/usr/bin/env bash
# Side-by-side figures of PERFORMANCE.md, in one run on the same input files:
#   validate:  Engraft's validator vs @medplum/core's validateResource (Node), base R4
#   roundtrip: Engraft's typed model (fhirbolt) vs Python fhir.resources (pydantic v2)
# over transaction Bundles of 1, 10, 100 and 1,000 entries cut from generated records.
# Each implementation runs one operation at a time on one thread and reports the median; the
# whole set runs ROUNDS times (default 3), implementations interleaved, and the report takes
# the median of the rounds (this machine's timings wander by up to a quarter between runs).
# Usage: scripts/perf/compare.sh   (SECONDS_PER file, operation and round: default 3)
# Installs what it needs: npm packages pinned in scripts/perf/package-lock.json, a Python venv
# with scripts/perf/requirements.txt under target/perf/venv. Results: target/perf/compare.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
SECONDS_PER=${SECONDS_PER:-3}
ROUNDS=${ROUNDS:-3}
OUT=target/perf
mkdir -p "$OUT"

cargo build --release --quiet --bin engraft --example perf_compare
(cd scripts/perf && [[ -d node_modules/@medplum/core ]] || npm ci --silent --no-audit --no-fund)
[[ -x $OUT/venv/bin/python ]] || python3 -m venv "$OUT/venv"
"$OUT/venv/bin/pip" install --quiet -r scripts/perf/requirements.txt

target/release/engraft fixtures generate --count 40 --seed 7 --out "$OUT/records.ndjson"
target/release/engraft convert "$OUT/records.ndjson" --compact --now 2026-01-01T00:00:00Z 2>/dev/null \
    | python3 scripts/perf/inputs.py "$OUT/inputs" 1 10 100 1000
INPUTS=("$OUT"/inputs/bundle-*.json)

RESULTS=$OUT/results.jsonl
: > "$RESULTS"
for round in $(seq 1 "$ROUNDS"); do
    echo "round $round of $ROUNDS" >&2
    for op in validate-base validate roundtrip; do
        target/release/examples/perf_compare "$op" "$SECONDS_PER" "${INPUTS[@]}" >> "$RESULTS"
    done
    node --experimental-websocket scripts/perf/medplum_validate.mjs "$SECONDS_PER" "${INPUTS[@]}" >> "$RESULTS"
    "$OUT/venv/bin/python" scripts/perf/fhir_resources_roundtrip.py "$SECONDS_PER" "${INPUTS[@]}" >> "$RESULTS"
done

# The inputs must be valid for Engraft, or the comparison measures error paths.
if grep '"implementation":"engraft"' "$RESULTS" | grep -v '"errors":0' >&2; then
    echo "Engraft found errors in the inputs; no comparison" >&2
    exit 1
fi
{
    echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs);" \
        "$(rustc --version | cut -d' ' -f1-2), Node $(node --version)," \
        "@medplum/core $(node -p "require('./scripts/perf/node_modules/@medplum/core/package.json').version")," \
        "$("$OUT/venv/bin/python" --version), fhir.resources $("$OUT/venv/bin/python" -c 'import fhir.resources as f; print(f.__version__)')," \
        "pydantic $("$OUT/venv/bin/python" -c 'import pydantic; print(pydantic.VERSION)'). $(date -u +%F)."
    echo
    "$OUT/venv/bin/python" scripts/perf/report.py "$RESULTS"
} > "$OUT/compare.md"
cat "$OUT/compare.md"

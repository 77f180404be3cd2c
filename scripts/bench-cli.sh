#!/usr/bin/env bash
# `engraft convert` over N generated records (default 100,000): records/s and peak RSS.
# Usage: scripts/bench-cli.sh [N]    (needs /usr/bin/time; `apt-get install time` if missing)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-100000}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
command -v /usr/bin/time >/dev/null || { echo "install GNU time: apt-get install -y time" >&2; exit 2; }
cargo build --release --quiet
BIN=target/release/engraft
$BIN fixtures generate --count "$N" --seed 7 --out "$WORK/records.ndjson"
echo "input: $N records, $(du -h "$WORK/records.ndjson" | cut -f1)"
for mode in "" "--no-validate"; do
  /usr/bin/time -f "%e s elapsed, %M KiB max RSS" -o "$WORK/time.txt" \
    $BIN convert "$WORK/records.ndjson" --compact $mode --now 2026-01-01T00:00:00Z > "$WORK/bundles.ndjson" 2> "$WORK/stderr.txt"
  echo "convert ${mode:-(validating each bundle against base R4)}: $(tail -1 "$WORK/stderr.txt")"
  echo "  $(cat "$WORK/time.txt"), output $(du -h "$WORK/bundles.ndjson" | cut -f1)"
done
# Memory must not grow with the input: compare with a tenth of it.
head -n $((N / 10)) "$WORK/records.ndjson" > "$WORK/small.ndjson"
/usr/bin/time -f "%M" -o "$WORK/small.txt" $BIN convert "$WORK/small.ndjson" --compact --now 2026-01-01T00:00:00Z > /dev/null 2>&1
echo "peak RSS for $((N / 10)) records: $(cat "$WORK/small.txt") KiB (flat memory: about the same as for $N)"

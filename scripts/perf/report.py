"""Turns the JSON lines of scripts/perf/compare.sh into the Markdown tables of PERFORMANCE.md:
per input and implementation, the median of the rounds' medians.

    python report.py results.jsonl
"""
import json
import statistics
import sys
from collections import defaultdict


def main():
    runs = defaultdict(list)
    for line in open(sys.argv[1]):
        r = json.loads(line)
        runs[(r["entries"], r["implementation"], r["operation"])].append(r)
    rows = defaultdict(dict)
    for (n, impl, op), rs in runs.items():
        rows[n][(impl, op)] = dict(rs[0], median_us=statistics.median(r["median_us"] for r in rs),
                                   rounds=len(rs))
    sizes = sorted(rows)

    def cell(n, key):
        r = rows[n].get(key)
        return r["median_us"] if r else None

    def us(v):
        return "n/a" if v is None else (f"{v:,.0f}" if v >= 100 else f"{v:,.1f}")

    def per_s(n, v):
        return "n/a" if v is None else f"{n / v * 1e6:,.0f}"

    def ratio(a, b):
        return "n/a" if a is None or b is None else f"{a / b:.1f}x"

    print("### Validation: parse + validate one Bundle (median µs; entries/s)\n")
    print("| entries | Engraft, base R4 | Medplum, base R4 | Medplum / Engraft "
          "| Engraft, base R4 + profiles | entries/s (Engraft, base) | errors E/M |")
    print("|---:|---:|---:|---:|---:|---:|---|")
    for n in sizes:
        e = cell(n, ("engraft", "validate-base"))
        m = cell(n, ("medplum", "validate"))
        full = cell(n, ("engraft", "validate"))
        errs = "/".join(str(rows[n].get(k, {}).get("errors", "n/a"))
                        for k in [("engraft", "validate-base"), ("medplum", "validate")])
        print(f"| {n:,} | {us(e)} | {us(m)} | {ratio(m, e)} | {us(full)} | {per_s(n, e)} | {errs} |")
    print("\n### Typed model: parse into R4 classes + serialise back to JSON (median µs)\n")
    print("| entries | Engraft (fhirbolt) | Python fhir.resources | fhir.resources / Engraft "
          "| entries/s (Engraft) |")
    print("|---:|---:|---:|---:|---:|")
    for n in sizes:
        e = cell(n, ("engraft", "roundtrip"))
        p = cell(n, ("fhir.resources", "roundtrip"))
        print(f"| {n:,} | {us(e)} | {us(p)} | {ratio(p, e)} | {per_s(n, e)} |")


if __name__ == "__main__":
    main()

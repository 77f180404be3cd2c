"""Builds the comparison inputs for scripts/perf/compare.sh: R4 transaction Bundles of exactly
1, 10, 100 and 1,000 entries, cut from the Bundles `engraft convert --compact` made of generated
records (one per line on stdin). Each record's entries are put in dependency order first (a
mobilisation Procedure names the product collected after it), then taken in order until the
size is reached, so every reference resolves inside the Bundle. The Bundle's own `meta.profile` is dropped: the Engraft
Bundle profile is for one record, and these hold many.

    engraft convert records.ndjson --compact | python inputs.py OUT_DIR 1 10 100 1000
"""
import json
import os
import sys


def references(value):
    """The urn:uuid references anywhere in a resource."""
    if isinstance(value, dict):
        for k, v in value.items():
            if k == "reference" and isinstance(v, str) and v.startswith("urn:uuid:"):
                yield v
            else:
                yield from references(v)
    elif isinstance(value, list):
        for v in value:
            yield from references(v)


def dependency_order(entries):
    """Entries whose references are all earlier, keeping the given order where it already is."""
    done, out, left = set(), [], list(entries)
    while left:
        ready = [e for e in left if all(r in done for r in references(e["resource"]))]
        if not ready:  # a cycle: keep the rest as they are
            ready = left
        for e in ready:
            done.add(e["fullUrl"])
        out.extend(ready)
        left = [e for e in left if e["fullUrl"] not in done]
    return out


def main():
    out, sizes = sys.argv[1], sorted(int(s) for s in sys.argv[2:])
    os.makedirs(out, exist_ok=True)
    entries, template = [], None
    # Reads all of stdin (stopping early would end the writer with SIGPIPE).
    for line in sys.stdin:
        if len(entries) < sizes[-1]:
            bundle = json.loads(line)
            template = template or bundle
            entries.extend(dependency_order(bundle["entry"]))
    if len(entries) < sizes[-1]:
        sys.exit(f"only {len(entries)} entries in the input")
    for n in sizes:
        bundle = {k: v for k, v in template.items() if k not in ("meta", "entry")}
        bundle["entry"] = entries[:n]
        with open(os.path.join(out, f"bundle-{n:04}.json"), "w") as f:
            json.dump(bundle, f, separators=(",", ":"))


if __name__ == "__main__":
    main()

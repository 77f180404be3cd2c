"""Python's side of `roundtrip` in scripts/perf/compare.sh: fhir.resources (pydantic v2 models)
parses the JSON text into typed models and serialises them back to JSON. fhir.resources 8 ships
R5 as its default and R4B under `fhir.resources.R4B`; the R4B Bundle is used, whose resources
Engraft emits (Patient, Condition, Procedure, Observation, Medication*, Encounter, Consent,
BiologicallyDerivedProduct, Provenance) are unchanged from R4. Same protocol as
examples/perf_compare.rs: warm up a tenth of the budget, time single operations for the budget
(at least 10), print the median as one JSON line per file.

    python fhir_resources_roundtrip.py <seconds> <file.json>...
"""
import json
import sys
import time

from fhir.resources.R4B.bundle import Bundle


def run(text):
    bundle = Bundle.model_validate_json(text)
    return bundle.model_dump_json(exclude_none=True)


def main():
    budget = float(sys.argv[1])
    for path in sys.argv[2:]:
        with open(path, "rb") as f:
            text = f.read()
        run(text)
        warm = time.perf_counter()
        while time.perf_counter() - warm < budget / 10:
            run(text)
        samples = []
        start = time.perf_counter()
        while time.perf_counter() - start < budget or len(samples) < 10:
            t = time.perf_counter_ns()
            run(text)
            samples.append(time.perf_counter_ns() - t)
        samples.sort()
        print(json.dumps({
            "implementation": "fhir.resources",
            "operation": "roundtrip",
            "file": path,
            "entries": len(json.loads(text).get("entry", [])) or 1,
            "median_us": samples[len(samples) // 2] / 1000,
            "samples": len(samples),
            "errors": 0,
            "warnings": 0,
        }), flush=True)


if __name__ == "__main__":
    main()

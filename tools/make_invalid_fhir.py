#!/usr/bin/env python3
"""Writes fixtures/invalid/fhir/: hand-made invalid FHIR resources, each one valid resource of a
golden bundle with one deliberate defect, and expected.json, the exact issues (validator code
and FHIRPath) each must yield.

    python3 tools/make_invalid_fhir.py
"""
import copy
import json
import os

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures")
OUT = os.path.join(ROOT, "invalid", "fhir")
B = json.load(open(os.path.join(ROOT, "bundles", "ms-rrms-auto-beam-atg.json")))
ALLO = json.load(open(os.path.join(ROOT, "bundles", "ms-allo-unrelated-pb.json")))
TBI = json.load(open(os.path.join(ROOT, "bundles", "ssc-limited-tbi-cy-atg.json")))
BASE = "https://engraft.dev/fhir/StructureDefinition/"


def res(profile, bundle=B, n=0):
    found = [e["resource"] for e in bundle["entry"] if e["resource"]["meta"]["profile"][0] == BASE + profile]
    return copy.deepcopy(found[n])


cases = {}


def case(name, resource, *expected):
    assert name not in cases, name
    cases[name] = (resource, [list(e) for e in expected])


def mut(profile, fn, bundle=B, n=0):
    r = res(profile, bundle, n)
    fn(r)
    return r


def setp(path, value):
    def f(r):
        cur = r
        for k in path[:-1]:
            cur = cur[k]
        cur[path[-1]] = value
    return f


def delp(path):
    def f(r):
        cur = r
        for k in path[:-1]:
            cur = cur[k]
        del cur[path[-1]]
    return f


# 1. Unknown elements
for prof, rt in [("engraft-patient", "Patient"), ("engraft-lab", "Observation"), ("engraft-hsct-procedure", "Procedure"), ("engraft-autoimmune-condition", "Condition"), ("engraft-medication-administration", "MedicationAdministration"), ("engraft-followup-encounter", "Encounter"), ("engraft-provenance", "Provenance"), ("engraft-consent", "Consent")]:
    case(f"unknown-element-{rt.lower()}", mut(prof, setp(["colour"], "blue")), ("unknown-element", f"{rt}.colour"))
case("unknown-element-nested", mut("engraft-lab", setp(["code", "coding", 0, "colour"], "x")), ("unknown-element", "Observation.code.coding[0].colour"))
case("unknown-choice-type", mut("engraft-response", lambda r: r.update(valueColour="x")), ("unknown-element", "Observation.valueColour"))

# 2. Base cardinality
case("observation-without-status", mut("engraft-lab", delp(["status"])), ("cardinality", "Observation.status"))
case("observation-without-code", mut("engraft-lab", delp(["code"])), ("cardinality", "Observation.code"))
case("procedure-without-subject", mut("engraft-hsct-procedure", delp(["subject"])), ("cardinality", "Procedure.subject"))
case("condition-without-subject", mut("engraft-autoimmune-condition", delp(["subject"])), ("cardinality", "Condition.subject"), ("profile-cardinality", "Condition.subject"))
case("encounter-without-class", mut("engraft-followup-encounter", delp(["class"])), ("cardinality", "Encounter.class"))
case("medadmin-without-effective", mut("engraft-medication-administration", delp(["effectivePeriod"]), n=1), ("cardinality", "MedicationAdministration.effective"))
case("provenance-without-recorded", mut("engraft-provenance", delp(["recorded"])), ("cardinality", "Provenance.recorded"))
case("subject-as-array", mut("engraft-lab", lambda r: r.update(subject=[r["subject"]])), ("cardinality", "Observation.subject"))
case("gender-as-array", mut("engraft-patient", setp(["gender"], ["female"])), ("cardinality", "Patient.gender"))
case("identifier-not-array", mut("engraft-lab", lambda r: r.update(identifier=r["identifier"][0])), ("structure", "Observation.identifier"))
case("empty-array", mut("engraft-lab", setp(["category"], [])), ("structure", "Observation.category"), ("profile-cardinality", "Observation.category"))
case("extension-without-url", mut("engraft-hsct-procedure", lambda r: r["extension"][0].pop("url")), ("cardinality", "Procedure.extension[0].url"), ("profile-slice", "Procedure.extension"))
case("coding-as-string", mut("engraft-lab", setp(["code", "coding"], ["751-8"])), ("structure", "Observation.code.coding[0]"), ("profile-binding", "Observation.code"))

# 3. Primitive formats
case("birthdate-impossible", mut("engraft-patient", setp(["birthDate"], "2020-13-45")), ("format", "Patient.birthDate"))
case("birthdate-feb-30", mut("engraft-patient", setp(["birthDate"], "1986-02-30")), ("format", "Patient.birthDate"))
case("birthdate-two-digit-year", mut("engraft-patient", setp(["birthDate"], "86-04-12")), ("format", "Patient.birthDate"))
case("datetime-time-without-zone", mut("engraft-lab", setp(["effectiveDateTime"], "2018-10-01T10:00:00")), ("format", "Observation.effectiveDateTime"))
case("datetime-bad-zone", mut("engraft-lab", setp(["effectiveDateTime"], "2018-10-01T10:00:00+25:00")), ("format", "Observation.effectiveDateTime"))
case("datetime-bad-hour", mut("engraft-lab", setp(["effectiveDateTime"], "2018-10-01T24:00:00Z")), ("format", "Observation.effectiveDateTime"))
case("period-start-bad", mut("engraft-followup-encounter", setp(["period", "start"], "2019-3-18")), ("format", "Encounter.period.start"))
case("instant-without-zone", mut("engraft-provenance", setp(["recorded"], "2026-01-01T00:00:00")), ("format", "Provenance.recorded"))
case("instant-date-only", mut("engraft-provenance", setp(["recorded"], "2026-01-01")), ("format", "Provenance.recorded"))
case("decimal-as-string", mut("engraft-lab", setp(["valueQuantity", "value"], "0.8")), ("primitive", "Observation.valueQuantity.value"))
case("integer-fraction", mut("engraft-performance-status", setp(["valueInteger"], 80.5)), ("format", "Observation.valueInteger"))
case("integer-out-of-range", mut("engraft-performance-status", setp(["valueInteger"], 3000000000)), ("format", "Observation.valueInteger"))
case("positiveint-zero", mut("engraft-tbi-procedure", setp(["extension", 1, "valuePositiveInt"], 0), bundle=TBI), ("format", "Procedure.extension[1].valuePositiveInt"))
case("id-with-underscore", mut("engraft-provenance", setp(["id"], "prov_1")), ("format", "Provenance.id"))
case("id-too-long", mut("engraft-provenance", setp(["id"], "a" * 65)), ("format", "Provenance.id"))
case("uri-with-space", mut("engraft-lab", setp(["code", "coding", 0, "system"], "http://loinc .org")), ("format", "Observation.code.coding[0].system"), ("profile-binding", "Observation.code"))
case("code-double-space", mut("engraft-lab", setp(["code", "coding", 0, "code"], "751  8")), ("format", "Observation.code.coding[0].code"), ("profile-binding", "Observation.code"))
case("code-leading-space", mut("engraft-patient", setp(["gender"], " female")), ("format", "Patient.gender"))
case("boolean-as-string", mut("engraft-disease-event", setp(["valueBoolean"], "true")), ("primitive", "Observation.valueBoolean"))
case("empty-string", mut("engraft-lab", setp(["code", "coding", 0, "display"], "")), ("primitive", "Observation.code.coding[0].display"))
case("whitespace-string", mut("engraft-conditioning-procedure", setp(["code", "text"], "   ")), ("primitive", "Procedure.code.text"))
case("string-as-number", mut("engraft-lab", setp(["valueQuantity", "unit"], 12)), ("primitive", "Observation.valueQuantity.unit"))
case("date-as-number", mut("engraft-patient", setp(["birthDate"], 1986)), ("primitive", "Patient.birthDate"))
case("canonical-with-space", mut("engraft-lab", setp(["meta", "profile"], ["https://engraft.dev/fhir/Structure Definition/x"])), ("format", "Observation.meta.profile[0]"), ("profile-unknown", "Observation.meta.profile"))
case("object-where-primitive", mut("engraft-patient", setp(["gender"], {"value": "female"})), ("primitive", "Patient.gender"))
case("primitive-extension-not-object", mut("engraft-patient", setp(["_birthDate"], "x")), ("structure", "Patient.birthDate"))
case("primitive-extension-unknown-member", mut("engraft-patient", setp(["_birthDate"], {"colour": "x"})), ("unknown-element", "Patient.birthDate.colour"))

# 4. Choice types narrowed by a profile
case("lab-value-string", mut("engraft-lab", lambda r: (r.pop("valueQuantity"), r.update(valueString="high"))), ("profile-type", "Observation.valueString"), ("profile-slice-closed", "Observation.valueString"))
case("lab-value-datetime", mut("engraft-lab", lambda r: (r.pop("valueQuantity"), r.update(valueDateTime="2019-01-01"))), ("profile-type", "Observation.valueDateTime"), ("profile-slice-closed", "Observation.valueDateTime"))
case("event-effective-period", mut("engraft-disease-event", lambda r: (r.pop("effectiveDateTime"), r.update(effectivePeriod={"start": "2022-09-14"}))), ("profile-type", "Observation.effectivePeriod"))
case("hsct-performed-string", mut("engraft-hsct-procedure", lambda r: (r.pop("performedDateTime"), r.update(performedString="day 0"))), ("profile-type", "Procedure.performedString"))
case("prior-therapy-medication-reference", mut("engraft-prior-therapy", lambda r: (r.pop("medicationCodeableConcept"), r.update(medicationReference={"reference": "Medication/1"}))), ("profile-type", "MedicationStatement.medicationReference"))
case("condition-abatement-string", mut("engraft-autoimmune-condition", lambda r: r.update(abatementString="better")), ("profile-type", "Condition.abatementString"), ("con-4", "Condition"))
case("score-value-codeable-concept", mut("engraft-disease-score", lambda r: (r.pop("valueQuantity"), r.update(valueCodeableConcept={"text": "x"})), n=1), ("profile-type", "Observation.valueCodeableConcept"))

# 5. Required bindings of base R4
case("observation-status-done", mut("engraft-lab", setp(["status"], "done")), ("binding", "Observation.status"), ("profile-fixed", "Observation.status"))
case("patient-gender-f", mut("engraft-patient", setp(["gender"], "f")), ("binding", "Patient.gender"))
case("procedure-status-finished", mut("engraft-hsct-procedure", setp(["status"], "finished")), ("binding", "Procedure.status"), ("profile-fixed", "Procedure.status"))
case("encounter-status-closed", mut("engraft-followup-encounter", setp(["status"], "closed")), ("binding", "Encounter.status"), ("profile-fixed", "Encounter.status"))
case("consent-status-valid", mut("engraft-consent", setp(["status"], "valid")), ("binding", "Consent.status"), ("profile-binding", "Consent.status"))
case("medadmin-status-given", mut("engraft-medication-administration", setp(["status"], "given")), ("binding", "MedicationAdministration.status"), ("profile-fixed", "MedicationAdministration.status"))
case("condition-clinical-status-sick", mut("engraft-autoimmune-condition", setp(["clinicalStatus", "coding", 0, "code"], "sick")), ("binding", "Condition.clinicalStatus"))
case("condition-verification-wrong-system", mut("engraft-autoimmune-condition", setp(["verificationStatus", "coding", 0, "system"], "http://example.org/ver")), ("binding", "Condition.verificationStatus"))
case("quantity-comparator", mut("engraft-lab", setp(["valueQuantity", "comparator"], "~")), ("binding", "Observation.valueQuantity.comparator"))
case("patient-link-type", mut("engraft-patient", lambda r: r.update(link=[{"other": {"identifier": {"system": "urn:x", "value": "1"}}, "type": "twin"}])), ("binding", "Patient.link[0].type"))
case("identifier-use", mut("engraft-lab", setp(["identifier", 0, "use"], "primary")), ("binding", "Observation.identifier[0].use"))
case("provenance-entity-role", mut("engraft-provenance", setp(["entity", 0, "role"], "origin")), ("binding", "Provenance.entity[0].role"), ("profile-fixed", "Provenance.entity[0].role"))

# 6. Fixed and pattern values of the profiles
case("lab-status-preliminary", mut("engraft-lab", setp(["status"], "preliminary")), ("profile-fixed", "Observation.status"))
case("hsct-status-in-progress", mut("engraft-hsct-procedure", setp(["status"], "in-progress")), ("profile-fixed", "Procedure.status"))
case("hsct-category-wrong", mut("engraft-hsct-procedure", setp(["category", "coding", 0, "code"], "71388002")), ("profile-pattern", "Procedure.category"))
case("hsct-code-without-234336002", mut("engraft-hsct-procedure", lambda r: r["code"]["coding"].pop(0)), ("profile-pattern", "Procedure.code"))
case("apheresis-code-wrong", mut("engraft-apheresis-procedure", setp(["code", "coding", 0, "code"], "127788007")), ("profile-pattern", "Procedure.code"))
case("tbi-code-wrong", mut("engraft-tbi-procedure", setp(["code", "coding", 0, "code"], "108290001"), bundle=TBI), ("profile-pattern", "Procedure.code"))
case("dose-system-not-ucum", mut("engraft-medication-administration", setp(["dosage", "dose", "system"], "http://example.org/units")), ("profile-fixed", "MedicationAdministration.dosage.dose.system"))
case("lab-quantity-system-not-ucum", mut("engraft-lab", setp(["valueQuantity", "system"], "http://example.org/units")), ("profile-fixed", "Observation.valueQuantity.system"))
case("consent-scope-treatment", mut("engraft-consent", setp(["scope", "coding", 0, "code"], "treatment")), ("profile-pattern", "Consent.scope"))
case("encounter-in-progress", mut("engraft-followup-encounter", setp(["status"], "in-progress")), ("profile-fixed", "Encounter.status"))
case("mobilisation-code-wrong", mut("engraft-mobilisation-procedure", setp(["code", "coding", 0, "code"], "conditioning")), ("profile-pattern", "Procedure.code"))
case("conditioning-code-wrong", mut("engraft-conditioning-procedure", setp(["code", "coding", 0, "code"], "mobilisation")), ("profile-pattern", "Procedure.code"))
case("response-code-wrong", mut("engraft-response", setp(["code", "coding", 0, "code"], "relapse")), ("profile-pattern", "Observation.code"))
case("lab-category-exam", mut("engraft-lab", setp(["category", 0, "coding", 0, "code"], "exam")), ("profile-pattern", "Observation.category[0]"))
case("product-category-organ", mut("engraft-stem-cell-product", setp(["productCategory"], "organ")), ("profile-fixed", "BiologicallyDerivedProduct.productCategory"))
case("bundle-type-collection", (lambda b: (b.update(type="collection"), b)[1])(copy.deepcopy({**B, "entry": B["entry"][:2]})), ("profile-fixed", "Bundle.type"), ("profile-slice", "Bundle.entry"))

# 7. Cardinality of the profiles
for prof, rt in [("engraft-lab", "Observation"), ("engraft-hsct-procedure", "Procedure"), ("engraft-autoimmune-condition", "Condition"), ("engraft-medication-administration", "MedicationAdministration"), ("engraft-followup-encounter", "Encounter"), ("engraft-prior-therapy", "MedicationStatement"), ("engraft-stem-cell-product", "BiologicallyDerivedProduct")]:
    case(f"no-identifier-{prof}", mut(prof, delp(["identifier"])), ("profile-cardinality", f"{rt}.identifier"))
case("patient-with-name", mut("engraft-patient", setp(["name"], [{"family": "Doe"}])), ("profile-cardinality", "Patient.name"))
case("patient-with-address", mut("engraft-patient", setp(["address"], [{"city": "Leiden"}])), ("profile-cardinality", "Patient.address"))
case("patient-with-telecom", mut("engraft-patient", setp(["telecom"], [{"system": "phone", "value": "1"}])), ("profile-cardinality", "Patient.telecom"))
case("patient-without-birthdate", mut("engraft-patient", delp(["birthDate"])), ("profile-cardinality", "Patient.birthDate"))
case("complication-without-onset", mut("engraft-complication", delp(["onsetDateTime"])), ("profile-cardinality", "Condition.onset"))
case("encounter-without-period", mut("engraft-followup-encounter", delp(["period"])), ("profile-cardinality", "Encounter.period"))
case("encounter-two-types", mut("engraft-followup-encounter", lambda r: r["type"].append(r["type"][0])), ("profile-cardinality", "Encounter.type"))
case("lab-without-value", mut("engraft-lab", delp(["valueQuantity"])), ("profile-cardinality", "Observation.value"))
case("medadmin-without-dosage", mut("engraft-medication-administration", delp(["dosage"])), ("profile-cardinality", "MedicationAdministration.dosage"))
case("medadmin-dose-without-code", mut("engraft-medication-administration", delp(["dosage", "dose", "code"])), ("profile-cardinality", "MedicationAdministration.dosage.dose.code"))
case("apheresis-without-partof", mut("engraft-apheresis-procedure", delp(["partOf"])), ("profile-cardinality", "Procedure.partOf"))
case("provenance-two-entities", mut("engraft-provenance", lambda r: r["entity"].append(r["entity"][0])), ("profile-cardinality", "Provenance.entity"))
case("provenance-entity-without-identifier", mut("engraft-provenance", delp(["entity", 0, "what", "identifier"])), ("profile-cardinality", "Provenance.entity[0].what.identifier"))
case("cell-dose-without-partof", mut("engraft-cell-dose", delp(["partOf"])), ("profile-cardinality", "Observation.partOf"))
case("consent-without-provision", mut("engraft-consent", delp(["provision"])), ("profile-cardinality", "Consent.provision"))
case("condition-without-clinical-status", mut("engraft-autoimmune-condition", delp(["clinicalStatus"])), ("profile-cardinality", "Condition.clinicalStatus"), ("con-3", "Condition"))

# 8. Bindings of the profiles
case("lab-code-not-in-valueset", mut("engraft-lab", setp(["code", "coding", 0, "code"], "1234-5")), ("profile-binding", "Observation.code"))
case("score-code-not-in-valueset", mut("engraft-disease-score", setp(["code", "coding", 0, "code"], "hba1c")), ("profile-binding", "Observation.code"))
case("time-point-not-in-valueset", mut("engraft-followup-encounter", setp(["type", 0, "coding", 0, "code"], "D200")), ("profile-binding", "Encounter.type[0]"))
case("gvhd-grade-ctcae", mut("engraft-gvhd", setp(["stage", 0, "summary", "coding", 0, "code"], "3"), bundle=ALLO), ("profile-binding", "Condition.stage[0].summary"))
case("product-code-not-in-valueset", mut("engraft-stem-cell-product", setp(["productCode", "coding", 0, "code"], "liver")), ("profile-binding", "BiologicallyDerivedProduct.productCode"))
case("response-value-not-in-valueset", mut("engraft-response", setp(["valueCodeableConcept", "coding", 0, "code"], "great")), ("profile-binding", "Observation.valueCodeableConcept"))
case("performance-code-not-in-valueset", mut("engraft-performance-status", setp(["code", "coding", 0, "code"], "edss")), ("profile-binding", "Observation.code"))
case("stop-reason-not-in-valueset", mut("engraft-prior-therapy", setp(["statusReason", 0, "coding", 0, "code"], "boredom")), ("profile-binding", "MedicationStatement.statusReason[0]"))
case("engraftment-code-not-in-valueset", mut("engraft-engraftment", setp(["code", "coding", 0, "code"], "relapse")), ("profile-binding", "Observation.code"))
case("vital-code-not-in-valueset", mut("engraft-vital-status", setp(["code", "coding", 0, "code"], "edss")), ("profile-binding", "Observation.code"))

# 9. Extension slices
case("hsct-without-donor-type", mut("engraft-hsct-procedure", lambda r: r["extension"].pop(0)), ("profile-slice", "Procedure.extension"))
case("hsct-two-donor-types", mut("engraft-hsct-procedure", lambda r: r["extension"].append(r["extension"][0])), ("profile-slice", "Procedure.extension"))
case("hsct-without-extensions", mut("engraft-hsct-procedure", delp(["extension"])), ("profile-slice", "Procedure.extension"), ("profile-slice", "Procedure.extension"))
case("complication-without-due-to", mut("engraft-complication", delp(["extension"])), ("profile-slice", "Condition.extension"))
case("encounter-without-relative-to", mut("engraft-followup-encounter", delp(["extension"])), ("profile-slice", "Encounter.extension"))
case("tbi-without-dose", mut("engraft-tbi-procedure", lambda r: r["extension"].pop(0), bundle=TBI), ("profile-slice", "Procedure.extension"))
case("product-without-source", mut("engraft-stem-cell-product", delp(["extension"])), ("profile-slice", "BiologicallyDerivedProduct.extension"))

# 10. Values of Engraft's extensions
case("donor-type-as-string", mut("engraft-hsct-procedure", lambda r: (r["extension"][0].pop("valueCodeableConcept"), r["extension"][0].update(valueString="auto"))), ("extension-type", "Procedure.extension[0].valueString"))
case("donor-type-not-in-valueset", mut("engraft-hsct-procedure", setp(["extension", 0, "valueCodeableConcept", "coding", 0, "code"], "xenogeneic")), ("extension-binding", "Procedure.extension[0].valueCodeableConcept"))
case("donor-type-without-value", mut("engraft-hsct-procedure", lambda r: r["extension"][0].pop("valueCodeableConcept")), ("extension-value", "Procedure.extension[0]"), ("ext-1", "Procedure.extension[0]"))
case("tbi-fractions-as-integer", mut("engraft-tbi-procedure", lambda r: (r["extension"][1].update(valueInteger=r["extension"][1].pop("valuePositiveInt"))), bundle=TBI), ("extension-type", "Procedure.extension[1].valueInteger"))
case("intensity-not-in-valueset", mut("engraft-conditioning-procedure", setp(["extension", 0, "valueCodeableConcept", "coding", 0, "code"], "extreme")), ("extension-binding", "Procedure.extension[0].valueCodeableConcept"))
case("estimated-flag-as-string", mut("engraft-autoimmune-condition", lambda r: r["extension"][0].update(_valueDateTime={"extension": [{"url": BASE + "date-estimated", "valueString": "yes"}]})), ("extension-type", "Condition.extension[0].valueDateTime.extension[0].valueString"))

# 11. Bundle rules
def bundle_with(fn, n=4, provenance=True):
    """The first n entries of the golden bundle, plus its Provenance (targets cut to match)."""
    b = copy.deepcopy(B)
    b["entry"] = b["entry"][:n]
    if provenance:
        prov = copy.deepcopy(B["entry"][-1])
        kept = {e["fullUrl"] for e in b["entry"]}
        prov["resource"]["target"] = [t for t in prov["resource"]["target"] if t["reference"] in kept]
        b["entry"].append(prov)
    fn(b)
    return b
case("bundle-duplicate-fullurl", bundle_with(lambda b: b["entry"][2].update(fullUrl=b["entry"][1]["fullUrl"])), ("bdl-7", "Bundle.entry[2].fullUrl"), ("reference", "Bundle.entry[3].resource.reasonReference[0].reference"), ("reference", "Bundle.entry[4].resource.target[2].reference"))
case("bundle-entry-without-request", bundle_with(lambda b: b["entry"][1].pop("request")), ("bdl-3", "Bundle.entry[1].request"), ("profile-cardinality", "Bundle.entry[1].request"))
case("bundle-dangling-reference", bundle_with(lambda b: b["entry"][1]["resource"]["patient"].update(reference="urn:uuid:00000000-0000-5000-8000-000000000000")), ("reference", "Bundle.entry[1].resource.patient.reference"))
case("bundle-version-specific-fullurl", bundle_with(lambda b: b["entry"][0].update(fullUrl="https://ehr.example/fhir/Patient/1/_history/2")), ("bdl-8", "Bundle.entry[0].fullUrl"), ("reference", "Bundle.entry[1].resource.patient.reference"), ("reference", "Bundle.entry[2].resource.subject.reference"), ("reference", "Bundle.entry[3].resource.subject.reference"), ("reference", "Bundle.entry[4].resource.target[0].reference"))
case("bundle-response-in-transaction", bundle_with(lambda b: b["entry"][1].update(response={"status": "201"})), ("bdl-4", "Bundle.entry[1].response"))
case("bundle-search-in-transaction", bundle_with(lambda b: b["entry"][1].update(search={"mode": "match"})), ("bdl-2", "Bundle.entry[1].search"))
case("bundle-total-in-transaction", bundle_with(lambda b: b.update(total=4)), ("bdl-1", "Bundle.total"))
case("bundle-without-timestamp", bundle_with(lambda b: b.pop("timestamp")), ("profile-cardinality", "Bundle.timestamp"))
case("bundle-request-method-patchy", bundle_with(lambda b: b["entry"][1]["request"].update(method="PATCHY")), ("binding", "Bundle.entry[1].request.method"))
case("bundle-single-entry", bundle_with(lambda b: None, n=1, provenance=False), ("profile-cardinality", "Bundle.entry"), ("profile-slice", "Bundle.entry"))

# 12. Reference targets inside a Bundle
case("subject-refers-to-consent", bundle_with(lambda b: b["entry"][2]["resource"]["subject"].update(reference=b["entry"][1]["fullUrl"])), ("profile-target", "Bundle.entry[2].resource.subject.reference"))
case("consent-patient-refers-to-condition", bundle_with(lambda b: b["entry"][1]["resource"]["patient"].update(reference=b["entry"][2]["fullUrl"])), ("profile-target", "Bundle.entry[1].resource.patient.reference"))

# 13. Base R4 invariants
case("obs-6-value-and-absent-reason", mut("engraft-lab", setp(["dataAbsentReason"], {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/data-absent-reason", "code": "unknown"}]})), ("obs-6", "Observation"))
case("obs-7-component-repeats-code", mut("engraft-lab", lambda r: r.update(component=[{"code": r["code"], "valueQuantity": r["valueQuantity"]}])), ("obs-7", "Observation"))
case("per-1-period-backwards", mut("engraft-conditioning-procedure", setp(["performedPeriod"], {"start": "2018-12-08", "end": "2018-12-03"})), ("per-1", "Procedure.performedPeriod"))
case("per-1-encounter-period-backwards", mut("engraft-followup-encounter", setp(["period", "end"], "2019-01-01")), ("per-1", "Encounter.period"))
case("qty-3-code-without-system", mut("engraft-lab", delp(["valueQuantity", "system"])), ("qty-3", "Observation.valueQuantity"), ("profile-cardinality", "Observation.valueQuantity.system"))
case("rat-1-numerator-only", mut("engraft-transplant-observation", lambda r: r["valueRatio"].pop("denominator"), bundle=ALLO, n=1), ("rat-1", "Observation.valueRatio"))
case("ref-1-dangling-local-reference", mut("engraft-lab", setp(["specimen"], {"reference": "#spec1"})), ("ref-1", "Observation"))
case("dom-3-unreferenced-contained", mut("engraft-lab", setp(["contained"], [{"resourceType": "Specimen", "id": "s1"}])), ("dom-3", "Observation"))
case("dom-2-nested-contained", mut("engraft-lab", lambda r: r.update(contained=[{"resourceType": "Specimen", "id": "s1", "contained": [{"resourceType": "Specimen", "id": "s2"}]}], specimen={"reference": "#s1"})), ("dom-2", "Observation.contained[0]"))
case("dom-4-contained-version", mut("engraft-lab", lambda r: r.update(contained=[{"resourceType": "Specimen", "id": "s1", "meta": {"versionId": "2"}}], specimen={"reference": "#s1"})), ("dom-4", "Observation.contained[0]"))
case("dom-5-contained-security", mut("engraft-lab", lambda r: r.update(contained=[{"resourceType": "Specimen", "id": "s1", "meta": {"security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}]}}], specimen={"reference": "#s1"})), ("dom-5", "Observation.contained[0]"))
case("con-5-entered-in-error-with-clinical-status", mut("engraft-autoimmune-condition", setp(["verificationStatus", "coding", 0, "code"], "entered-in-error")), ("con-5", "Condition"))
case("ppc-1-no-policy", mut("engraft-consent", delp(["policy"])), ("ppc-1", "Consent"))
case("ppc-3-research-without-patient", mut("engraft-consent", delp(["patient"])), ("ppc-3", "Consent"), ("profile-cardinality", "Consent.patient"))
case("mad-1-dosage-without-dose", mut("engraft-medication-administration", setp(["dosage"], {"route": {"text": "iv"}})), ("mad-1", "MedicationAdministration"), ("profile-cardinality", "MedicationAdministration.dosage.dose"))
case("pat-1-empty-contact", mut("engraft-patient", setp(["contact"], [{"gender": "male"}])), ("pat-1", "Patient"))
case("ele-1-empty-object", mut("engraft-lab", setp(["method"], {})), ("ele-1", "Observation.method"))
case("ele-1-id-only", mut("engraft-lab", setp(["method"], {"id": "m1"})), ("ele-1", "Observation.method"))
case("ext-1-value-and-extensions", mut("engraft-hsct-procedure", lambda r: r["extension"][0].update(extension=[{"url": "urn:x", "valueString": "y"}])), ("ext-1", "Procedure.extension[0]"))

# 14. The remaining profiles
REL = json.load(open(os.path.join(ROOT, "bundles", "anca-vasculitis-relapse-restart.json")))
BOOST = json.load(open(os.path.join(ROOT, "bundles", "ms-multi-day-infusion-boost.json")))
case("restart-without-period", mut("engraft-therapy-restart", delp(["effectivePeriod"]), bundle=REL), ("profile-cardinality", "MedicationStatement.effective"))
case("restart-without-relative-to", mut("engraft-therapy-restart", delp(["extension"]), bundle=REL), ("profile-slice", "MedicationStatement.extension"))
case("supplemental-code-not-in-valueset", mut("engraft-supplemental-infusion", setp(["code", "coding", 0, "code"], "conditioning"), bundle=BOOST), ("profile-binding", "Procedure.code"))
case("supplemental-without-partof", mut("engraft-supplemental-infusion", delp(["partOf"]), bundle=BOOST), ("profile-cardinality", "Procedure.partOf"))
case("body-measurement-without-value", mut("engraft-body-measurement", delp(["valueQuantity"])), ("profile-cardinality", "Observation.value"))
case("body-measurement-code-not-in-valueset", mut("engraft-body-measurement", setp(["code", "coding", 0, "code"], "8867-4")), ("profile-binding", "Observation.code"))

# 14b. Slicing: pattern (Patient.identifier by type, Observation.component by code), type
# (lab value[x], closed), profile (Bundle.entry by the profile its resource meets).
UPN_TYPE = ["identifier", 0, "type", "coding", 0, "code"]
case("patient-without-upn", mut("engraft-patient", setp(UPN_TYPE, "MR")), ("profile-slice", "Patient.identifier"))
case("patient-two-upns", mut("engraft-patient", lambda r: r["identifier"].append(copy.deepcopy(r["identifier"][0]))), ("profile-slice", "Patient.identifier"))
case("upn-without-value", mut("engraft-patient", delp(["identifier", 0, "value"])), ("profile-cardinality", "Patient.identifier[0].value"))
case("day-component-twice", mut("engraft-disease-score", lambda r: r["component"].append(copy.deepcopy(r["component"][0])), n=2), ("profile-slice", "Observation.component"))
case("day-component-as-integer", mut("engraft-disease-score", lambda r: r["component"][0].update(valueInteger=r["component"][0].pop("valueQuantity")["value"]), n=2), ("profile-type", "Observation.component[0].valueInteger"))
case("bundle-patient-not-conformant", bundle_with(lambda b: b["entry"][0]["resource"].pop("birthDate")), ("profile-cardinality", "Bundle.entry[0].resource.birthDate"), ("profile-slice", "Bundle.entry"))
case("bundle-two-provenances", bundle_with(lambda b: b["entry"].append((lambda e: (e.update(fullUrl="urn:uuid:7d8e3c52-5f0f-5a43-9d6b-0c9f4c1f2a11"), e["resource"].update(id="7d8e3c52-5f0f-5a43-9d6b-0c9f4c1f2a11"), e["request"].update(url="Provenance/7d8e3c52-5f0f-5a43-9d6b-0c9f4c1f2a11"), e)[-1])(copy.deepcopy(b["entry"][-1])))), ("profile-slice", "Bundle.entry"))

# 14c. Engraft's own invariants
case("day-component-fractional", mut("engraft-disease-score", setp(["component", 0, "valueQuantity", "value"], 99.5), n=2), ("eng-1", "Observation.component[0].valueQuantity"))
case("day-component-in-weeks", mut("engraft-disease-score", lambda r: r["component"][0]["valueQuantity"].update(unit="wk", code="wk"), n=2), ("eng-1", "Observation.component[0].valueQuantity"))
case("regimen-dose-zero", mut("engraft-medication-administration", setp(["dosage", "dose", "value"], 0)), ("eng-2", "MedicationAdministration.dosage.dose"))

# 15. Profiles that cannot be used
case("unknown-engraft-profile", mut("engraft-lab", setp(["meta", "profile"], [BASE + "engraft-nothing"])), ("profile-unknown", "Observation.meta.profile"))
case("profile-of-another-type", mut("engraft-lab", setp(["meta", "profile"], [BASE + "engraft-patient"])), ("profile-type", "Observation"))

# 16. One failing example for every kind of constraint every profile uses. The hand-made cases
# above cover some; for each (profile, kind) still uncovered, a generic defect is made from the
# first golden resource of that profile. Kinds: profile-cardinality, -fixed, -pattern, -binding,
# -type, -target, -slice, -slice-closed and Engraft invariants (eng-N).
PROFILES_DIR = os.path.join(ROOT, "..", "profiles")
GOLDENS = [json.load(open(os.path.join(ROOT, "bundles", f))) for f in sorted(os.listdir(os.path.join(ROOT, "bundles")))]
FIXED_OTHER = {"Observation.status": "amended", "Procedure.status": "in-progress", "MedicationAdministration.status": "in-progress",
               "Encounter.status": "in-progress", "BiologicallyDerivedProduct.productCategory": "tissue"}
DAY = {"code": {"coding": [{"system": "https://engraft.dev/fhir/CodeSystem/engraft-observation", "code": "day-post-hsct"}]},
       "valueQuantity": {"value": 30, "unit": "d", "system": "http://unitsofmeasure.org", "code": "d"}}
OTHER_TYPES = [("Boolean", True), ("Period", {"start": "2020-01-01"}), ("DateTime", "2020-01-01"), ("String", "x"), ("Reference", {"reference": "Medication/example"})]


def profile_kinds(sd):
    """(kind, differential element) pairs, first element per kind."""
    out = {}
    for el in sd["differential"]["element"]:
        if el["id"] == sd["type"]:
            continue
        kinds = []
        if "min" in el or "max" in el:
            kinds.append("profile-slice" if "sliceName" in el else "profile-cardinality")
        kinds += ["profile-fixed" for k in el if k.startswith("fixed")]
        # A pattern inside a slice is its discriminator: an item that misses it is simply not
        # in the slice, so it has no failing example of its own.
        kinds += ["profile-pattern" for k in el if k.startswith("pattern") and ":" not in el["id"]]
        if el.get("binding", {}).get("strength") == "required":
            kinds.append("profile-binding")
        if el["id"].endswith("[x]") and "type" in el:
            kinds.append("profile-type")
        if any("targetProfile" in t for t in el.get("type", [])):
            kinds.append("profile-target")
        kinds += [c["key"] for c in el.get("constraint", [])]
        if el.get("slicing", {}).get("rules") == "closed":
            kinds.append("profile-slice-closed")
        for k in kinds:
            out.setdefault(k, []).append(el)
    return out


def covered():
    cov = set()
    for name, (r, issues) in cases.items():
        for code, expr in issues:
            cov.add((r.get("meta", {}).get("profile", [None])[0], code))
            if expr.startswith("Bundle.entry["):
                i = int(expr[len("Bundle.entry["):].split("]")[0])
                cov.add((r["entry"][i]["resource"]["meta"]["profile"][0], code))
    return cov


def golden_of(url):
    for b in GOLDENS:
        for i, e in enumerate(b["entry"]):
            if e["resource"]["meta"]["profile"][0] == url:
                return b, i
    raise KeyError(url)


def top(el):
    """The top-level element name of a differential element, or None if it is nested/sliced."""
    parts = el["id"].split(".")
    return parts[1] if len(parts) == 2 and ":" not in el["id"] else None


def keys_of(r, name):
    if name.endswith("[x]"):
        base = name[:-3]
        return [k for k in r if k.startswith(base) and len(k) > len(base) and k[len(base)].isupper()]
    return [name] if name in r else []


def expr_of(t, r, key):
    return f"{t}.{key}[0]" if isinstance(r[key], list) else f"{t}.{key}"


def mini_bundle(b, i):
    """Entry i of golden bundle b with the patient, consent, what it refers to (transitively)
    and a Provenance over exactly those entries."""
    by_url = {e["fullUrl"]: k for k, e in enumerate(b["entry"])}
    keep = {0, i} | {k for k, e in enumerate(b["entry"]) if e["resource"]["resourceType"] == "Consent"}
    todo = [i]
    while todo:
        text = json.dumps(b["entry"][todo.pop()]["resource"])
        for url, k in by_url.items():
            if k not in keep and url in text and b["entry"][k]["resource"]["resourceType"] != "Provenance":
                keep.add(k)
                todo.append(k)
    order = sorted(keep)
    nb = copy.deepcopy({**b, "entry": [b["entry"][k] for k in order]})
    prov = copy.deepcopy(b["entry"][-1])
    kept = {e["fullUrl"] for e in nb["entry"]}
    prov["resource"]["target"] = [t for t in prov["resource"]["target"] if t["reference"] in kept]
    nb["entry"].append(prov)
    return nb, order.index(i)


def generic(sd, kind, els):
    t, url = sd["type"], sd["url"]
    b, i = golden_of(url)
    r = copy.deepcopy(b["entry"][i]["resource"])
    if kind == "profile-cardinality":
        for el in els:
            name = top(el)
            if name and el.get("min", 0) >= 1 and keys_of(r, name) and el["id"] not in ("Observation.status",):
                base = next(e for e in sd["snapshot"]["element"] if e["id"] == el["id"])
                if base["base"]["min"] == 0:
                    for k in keys_of(r, name):
                        del r[k]
                    return r, [("profile-cardinality", f"{t}.{name.replace('[x]', '')}")]
    if kind == "profile-fixed":
        for el in els:
            if el["id"] in FIXED_OTHER and top(el) in r:
                r[top(el)] = FIXED_OTHER[el["id"]]
                return r, [("profile-fixed", f"{t}.{top(el)}")]
    if kind in ("profile-pattern", "profile-binding"):
        for el in els:
            name = top(el)
            for k in keys_of(r, name) if name else []:
                v = r[k][0] if isinstance(r[k], list) else r[k]
                if isinstance(v, dict) and "coding" in v:
                    v["coding"][0]["code"] = "not-" + kind.split("-")[1]
                    v.pop("text", None)
                    return r, [(kind, expr_of(t, r, k))]
    if kind == "profile-type":
        for el in els:
            if el["id"] == "Observation.component:dayPostHsct.value[x]":
                day = {"code": copy.deepcopy(DAY["code"]), "valueInteger": 30}
                r["component"] = [c for c in r.get("component", []) if c["code"]["coding"][0]["code"] != "day-post-hsct"] + [day]
                return r, [("profile-type", f"Observation.component[{len(r['component']) - 1}].valueInteger")]
        for el in els:
            name = top(el)
            if not name or not keys_of(r, name):
                continue
            allowed = {x["code"].lower() for x in el["type"]}
            base = next(e for e in sd["snapshot"]["element"] if e["id"] == el["id"])
            base_types = {x["code"].lower() for x in base["base"].get("type", [])} or None
            base_el_types = {x["code"].lower() for x in next(e for e in json.load(open(os.path.join(ROOT, "..", "definitions", "r4-snapshots.json")))[t] if e["id"] == el["id"])["type"]}
            for tn, v in OTHER_TYPES:
                if tn.lower() not in allowed and tn.lower() in base_el_types:
                    for k in keys_of(r, name):
                        del r[k]
                    key = name[:-3] + tn
                    r[key] = v
                    return r, [("profile-type", f"{t}.{key}")]
    if kind == "profile-target":
        for el in els:
            name = top(el)
            if name and name in r:
                nb, j = mini_bundle(b, i)
                res_ = nb["entry"][j]["resource"]
                ref = res_[name][0] if isinstance(res_[name], list) else res_[name]
                consent = next(e["fullUrl"] for e in nb["entry"] if e["resource"]["resourceType"] == "Consent")
                ref["reference"] = consent
                return nb, [("profile-target", f"Bundle.entry[{j}].resource.{name}{'[0]' if isinstance(res_[name], list) else ''}.reference")]
    if kind == "profile-slice":
        for el in els:
            if el["id"] == "Observation.component:dayPostHsct":
                r.setdefault("component", [])
                have = sum(1 for c in r["component"] if c["code"]["coding"][0]["code"] == "day-post-hsct")
                r["component"] += [copy.deepcopy(DAY) for _ in range(2 - have)]
                return r, [("profile-slice", "Observation.component")]
            if el["id"].startswith(f"{t}.extension:") and el.get("max") == "1":
                ext_url = el["type"][0]["profile"][0]
                for gb in GOLDENS:
                    for e in gb["entry"]:
                        g = e["resource"]
                        found = [x for x in g.get("extension", []) if x["url"] == ext_url]
                        if g["meta"]["profile"][0] == url and found:
                            r = copy.deepcopy(g)
                            r["extension"].append(copy.deepcopy(found[0]))
                            return r, [("profile-slice", f"{t}.extension")]
    if kind == "eng-1":
        day = copy.deepcopy(DAY)
        day["valueQuantity"]["value"] = 30.5
        r["component"] = [c for c in r.get("component", []) if c["code"]["coding"][0]["code"] != "day-post-hsct"] + [day]
        return r, [("eng-1", f"Observation.component[{len(r['component']) - 1}].valueQuantity")]
    raise SystemExit(f"no generic defect for {url} {kind}")


have = covered()
for fn in sorted(os.listdir(PROFILES_DIR)):
    if not fn.startswith("StructureDefinition-engraft-"):
        continue
    sd = json.load(open(os.path.join(PROFILES_DIR, fn)))
    for kind, els in sorted(profile_kinds(sd).items()):
        if (sd["url"], kind) not in have:
            resource, expected = generic(sd, kind, els)
            case(f"auto-{sd['id'][len('engraft-'):]}-{kind.replace('profile-', '')}", resource, *expected)

os.makedirs(OUT, exist_ok=True)
for f in os.listdir(OUT):
    os.remove(os.path.join(OUT, f))
expected = {}
for name, (resource, issues) in sorted(cases.items()):
    with open(os.path.join(OUT, f"{name}.json"), "w") as f:
        json.dump(resource, f, indent=2, ensure_ascii=False)
        f.write("\n")
    expected[name] = sorted(issues)
with open(os.path.join(OUT, "expected.json"), "w") as f:
    json.dump(expected, f, indent=1)
    f.write("\n")
print(f"{len(cases)} invalid FHIR resources")

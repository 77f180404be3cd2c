#!/usr/bin/env python3
"""Writes Engraft's FHIR package (profiles/) from the compact tables below.

The tables are the source of truth for Engraft's CodeSystems, ValueSets, ConceptMaps and
StructureDefinition differentials; this script plays the role SUSHI plays for FSH. Run it
after editing a table and commit both:

    python3 tools/gen_profiles.py

Snapshots are not written here: `engraft profiles snapshot` (validation issue) fills them.
Codes follow ../shared/domain-sct.md; only codes of confidence H or M are used for standard
systems, everything else is a local code of an Engraft CodeSystem.
"""
import json
import re
import os
import sys

BASE = "https://engraft.dev/fhir"
VERSION = "0.1.0"
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "profiles")
SCT = "http://snomed.info/sct"
LOINC = "http://loinc.org"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
UCUM = "http://unitsofmeasure.org"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
DATE = "2026-11-25"
DUE_TO = "http://hl7.org/fhir/StructureDefinition/condition-dueTo"


def cs_url(name):
    return f"{BASE}/CodeSystem/{name}"


def vs_url(name):
    return f"{BASE}/ValueSet/{name}"


def sd_url(name):
    return f"{BASE}/StructureDefinition/{name}"


# ---------------------------------------------------------------------------------------------
# CodeSystems: name -> (title, description, properties, concepts)
# concept: (code, display, definition, {property: value}, [children])
# ---------------------------------------------------------------------------------------------

def c(code, display, definition=None, props=None, children=None):
    return (code, display, definition or display, props or {}, children or [])


CODE_SYSTEMS = {
    "engraft-disease": ("Engraft autoimmune disease", "Autoimmune indications for HSCT and their subtypes (EBMT ADWP / CIBMTR 2402 classes).", [], [
        c("multiple-sclerosis", "Multiple sclerosis", children=[
            c("rrms", "Relapsing-remitting multiple sclerosis"),
            c("spms", "Secondary progressive multiple sclerosis"),
            c("ppms", "Primary progressive multiple sclerosis"),
            c("aggressive-ms", "Aggressive multiple sclerosis"),
        ]),
        c("cis", "Clinically isolated syndrome"),
        c("nmosd", "Neuromyelitis optica spectrum disorder"),
        c("cidp", "Chronic inflammatory demyelinating polyradiculoneuropathy"),
        c("myasthenia-gravis", "Myasthenia gravis"),
        c("systemic-sclerosis", "Systemic sclerosis", children=[
            c("diffuse-cutaneous-ssc", "Diffuse cutaneous systemic sclerosis"),
            c("limited-cutaneous-ssc", "Limited cutaneous systemic sclerosis"),
        ]),
        c("sle", "Systemic lupus erythematosus", children=[
            c("lupus-nephritis", "Lupus nephritis"),
        ]),
        c("rheumatoid-arthritis", "Rheumatoid arthritis"),
        c("crohns-disease", "Crohn's disease"),
        c("type-1-diabetes", "Type 1 diabetes mellitus"),
        c("vasculitis", "Vasculitis", children=[
            c("anca-vasculitis", "ANCA-associated vasculitis"),
            c("gpa", "Granulomatosis with polyangiitis"),
            c("mpa", "Microscopic polyangiitis"),
        ]),
        c("behcet", "Behcet's disease"),
    ]),
    # Scales the record may carry. Properties: min, max, step, excluded (comma list), integer,
    # category (observation-category code), unit (UCUM).
    "engraft-scale": ("Engraft assessment scale", "Disease scores, organ function and performance scales a registry record may carry, with their ranges.", [
        ("min", "decimal"), ("max", "decimal"), ("step", "decimal"), ("excluded", "string"),
        ("integer", "boolean"), ("category", "code"), ("unit", "string")], [
        c("edss", "Expanded Disability Status Scale", "Kurtzke EDSS: 0, 1.0, 1.5 ... 9.5, 10 (no 0.5); 10 = death due to MS.", {"min": 0, "max": 10, "step": 0.5, "excluded": "0.5", "integer": False, "category": "survey", "unit": "{score}"}),
        c("mrss", "Modified Rodnan skin score", "17 sites x 0-3 = 0-51.", {"min": 0, "max": 51, "step": 1, "integer": True, "category": "exam", "unit": "{score}"}),
        c("fvc-percent", "FVC % predicted", None, {"min": 10, "max": 200, "integer": False, "category": "exam", "unit": "%"}),
        c("dlco-percent", "DLCO % predicted", None, {"min": 5, "max": 200, "integer": False, "category": "exam", "unit": "%"}),
        c("lvef", "Left ventricular ejection fraction", None, {"min": 5, "max": 90, "integer": False, "category": "exam", "unit": "%"}),
        c("sledai-2k", "SLEDAI-2K", "Systemic Lupus Erythematosus Disease Activity Index 2000, 0-105.", {"min": 0, "max": 105, "step": 1, "integer": True, "category": "survey", "unit": "{score}"}),
        c("das28-esr", "DAS28-ESR", None, {"min": 0, "max": 10, "integer": False, "category": "survey", "unit": "{score}"}),
        c("das28-crp", "DAS28-CRP", None, {"min": 0, "max": 10, "integer": False, "category": "survey", "unit": "{score}"}),
        c("cdai", "CDAI (disease-dependent)", "Rheumatoid arthritis Clinical Disease Activity Index or Crohn's Disease Activity Index, resolved by the record's disease.", {"min": 0, "max": 1100, "integer": False, "category": "survey", "unit": "{score}"}),
        c("sdai", "Simplified Disease Activity Index", None, {"min": 0, "max": 86, "integer": False, "category": "survey", "unit": "{score}"}),
        c("crohn-cdai", "Crohn's Disease Activity Index", None, {"min": 0, "max": 1100, "integer": False, "category": "survey", "unit": "{score}"}),
        c("ses-cd", "Simple Endoscopic Score for Crohn's Disease", None, {"min": 0, "max": 56, "step": 1, "integer": True, "category": "exam", "unit": "{score}"}),
        c("incat", "INCAT disability score", None, {"min": 0, "max": 10, "step": 1, "integer": True, "category": "survey", "unit": "{score}"}),
        c("bvas", "Birmingham Vasculitis Activity Score", None, {"min": 0, "max": 63, "step": 1, "integer": True, "category": "survey", "unit": "{score}"}),
        c("mri-new-t2", "New or enlarging T2 lesions", None, {"min": 0, "max": 500, "step": 1, "integer": True, "category": "imaging", "unit": "{lesions}"}),
        c("mri-gd", "Gadolinium-enhancing lesions", None, {"min": 0, "max": 500, "step": 1, "integer": True, "category": "imaging", "unit": "{lesions}"}),
        c("insulin-dose", "Insulin dose per kg per day", None, {"min": 0, "max": 5, "integer": False, "category": "exam", "unit": "[iU]/kg/d"}),
        c("hct-ci", "HCT-CI (Sorror)", None, {"min": 0, "max": 30, "step": 1, "integer": True, "category": "survey", "unit": "{score}"}),
    ]),
    "engraft-observation": ("Engraft observation", "Observations without a LOINC or SNOMED CT code (domain-sct.md 3.7).", [], [
        c("edss", "Expanded Disability Status Scale score"),
        c("mrss", "Modified Rodnan skin score"),
        c("lvef", "Left ventricular ejection fraction"),
        c("sledai-2k", "SLEDAI-2K score"),
        c("das28-esr", "DAS28-ESR score"),
        c("das28-crp", "DAS28-CRP score"),
        c("crohn-cdai", "Crohn's Disease Activity Index"),
        c("ses-cd", "SES-CD score"),
        c("incat", "INCAT disability score"),
        c("bvas", "BVAS score"),
        c("mri-new-t2", "New or enlarging T2 lesion count"),
        c("mri-gd", "Gadolinium-enhancing lesion count"),
        c("insulin-dose", "Insulin dose per kg per day"),
        c("hct-ci", "HCT-CI total score"),
        c("lansky", "Lansky play-performance score", "Paediatric performance scale (<16 years); not LOINC 89243-0."),
        c("body-surface-area", "Body surface area"),
        c("neutrophil-engraftment", "Neutrophil engraftment", "ANC >= 0.5x10^9/L on 3 consecutive days after the nadir; date = the first of the 3 (CIBMTR 2450)."),
        c("platelet-engraftment", "Platelet engraftment", "Platelets >= 20x10^9/L on 3 consecutive days without transfusion in the previous 7 days; date = the first of the 3."),
        c("day-post-hsct", "Days after HSCT (day 0 = first infusion day)"),
        c("cd34-collected", "CD34+ cells collected per kg in one apheresis"),
        c("hla-match", "HLA match (matched loci / typed loci)"),
        c("age-at-hsct", "Age at HSCT in whole years"),
        c("disease-response", "Disease response at follow-up"),
        c("relapse", "Relapse", "A relapse as the registry classified it."),
        c("progression", "Disease progression"),
        c("pseudo-relapse", "Pseudo-relapse", "Fever- or infection-related worsening classified by the registry as pseudo-relapse (kept as reported)."),
        c("secondary-autoimmunity-flare", "Secondary autoimmunity reported as a flare"),
        c("vital-status", "Vital status at last contact"),
        c("cause-of-death", "Main cause of death"),
        c("lab-ebv-dna", "EBV DNA viral load"),
        c("lab-c-peptide", "C-peptide"),
        c("lab-hba1c", "Haemoglobin A1c", "HbA1c; no LOINC code verified yet (domain-sct.md), so a local code."),
    ]),
    "engraft-lab": ("Engraft laboratory test", "Laboratory tests a registry record may carry; properties give the canonical UCUM unit.", [("unit", "string")], [
        c("anc", "Absolute neutrophil count", None, {"unit": "10*9/L"}),
        c("platelets", "Platelet count", None, {"unit": "10*9/L"}),
        c("wbc", "White blood cell count", None, {"unit": "10*9/L"}),
        c("lymphocytes", "Lymphocyte count", None, {"unit": "10*9/L"}),
        c("hemoglobin", "Haemoglobin", None, {"unit": "g/dL"}),
        c("creatinine", "Creatinine", None, {"unit": "mg/dL"}),
        c("bilirubin", "Total bilirubin", None, {"unit": "mg/dL"}),
        c("cmv-dna", "CMV DNA viral load in blood", None, {"unit": "[IU]/mL"}),
        c("ebv-dna", "EBV DNA viral load", None, {"unit": "[IU]/mL"}),
        c("c-peptide", "C-peptide", None, {"unit": "ng/mL"}),
        c("hba1c", "Haemoglobin A1c", None, {"unit": "%"}),
        c("cd34-blood", "CD34+ cells in blood before apheresis", None, {"unit": "/uL"}),
        c("dlco", "DLCO (absolute)", "Diffusing capacity for carbon monoxide; EU mmol/(min.kPa) values are converted.", {"unit": "mL/min/mm[Hg]"}),
    ]),
    "engraft-drug": ("Engraft drug", "Drugs of mobilisation, conditioning, prior and restarted therapy. ATG is coded at product level.", [], [
        c("cyclophosphamide", "Cyclophosphamide"), c("carmustine", "Carmustine (BCNU)"),
        c("etoposide", "Etoposide"), c("cytarabine", "Cytarabine"), c("melphalan", "Melphalan"),
        c("fludarabine", "Fludarabine"), c("busulfan", "Busulfan"), c("thiotepa", "Thiotepa"),
        c("treosulfan", "Treosulfan"), c("rituximab", "Rituximab"), c("alemtuzumab", "Alemtuzumab"),
        c("filgrastim", "Filgrastim"), c("lenograstim", "Lenograstim"), c("pegfilgrastim", "Pegfilgrastim"),
        c("plerixafor", "Plerixafor"),
        c("atg-rabbit", "Anti-thymocyte globulin (rabbit, Thymoglobulin)"),
        c("atg-horse", "Anti-thymocyte globulin (equine, ATGAM)"),
        c("mesna", "Mesna"),
        c("natalizumab", "Natalizumab"), c("ocrelizumab", "Ocrelizumab"), c("ofatumumab", "Ofatumumab"),
        c("fingolimod", "Fingolimod"), c("interferon-beta", "Interferon beta"),
        c("glatiramer", "Glatiramer acetate"), c("dimethyl-fumarate", "Dimethyl fumarate"),
        c("teriflunomide", "Teriflunomide"), c("cladribine", "Cladribine"), c("mitoxantrone", "Mitoxantrone"),
        c("methotrexate", "Methotrexate"), c("mycophenolate", "Mycophenolate"), c("azathioprine", "Azathioprine"),
        c("tocilizumab", "Tocilizumab"), c("adalimumab", "Adalimumab"), c("infliximab", "Infliximab"),
        c("etanercept", "Etanercept"), c("abatacept", "Abatacept"), c("belimumab", "Belimumab"),
        c("hydroxychloroquine", "Hydroxychloroquine"), c("ivig", "Intravenous immunoglobulin"),
        c("prednisolone", "Prednisolone"), c("ciclosporin", "Ciclosporin"), c("tacrolimus", "Tacrolimus"),
        c("vedolizumab", "Vedolizumab"), c("ustekinumab", "Ustekinumab"), c("eculizumab", "Eculizumab"),
        c("inebilizumab", "Inebilizumab"), c("insulin", "Insulin"),
    ]),
    "engraft-procedure": ("Engraft procedure", "Transplant steps without a SNOMED CT concept (domain-sct.md 3.7).", [], [
        c("mobilisation", "Stem cell mobilisation"),
        c("conditioning", "Conditioning regimen"),
        c("tbi", "Total body irradiation"),
        c("cd34-selection", "CD34+ selection"),
        c("t-cell-depletion", "T-cell depletion"),
        c("supplemental-infusion", "Supplemental stem cell infusion", "Cells given apart from the day-0 infusion; not a new HSCT (CIBMTR).", children=[
            c("boost", "Stem cell boost"), c("top-up", "Stem cell top-up"), c("dli", "Donor lymphocyte infusion"),
        ]),
    ]),
    "engraft-mobilisation-regimen": ("Engraft mobilisation regimen", "Mobilisation regimens.", [], [
        c("cy-gcsf", "Cyclophosphamide + G-CSF"), c("gcsf", "G-CSF alone"),
        c("gcsf-plerixafor", "G-CSF + plerixafor"), c("cy-gcsf-plerixafor", "Cyclophosphamide + G-CSF + plerixafor"),
        c("other", "Other mobilisation regimen"),
    ]),
    "engraft-regimen": ("Engraft conditioning regimen", "Conditioning regimens (local codes; names as in EBMT ADWP practice).", [], [
        c("beam", "BEAM"), c("beam-atg", "BEAM + ATG"), c("cy-atg", "Cyclophosphamide 200 mg/kg + ATG"),
        c("cy-atg-rituximab", "Cyclophosphamide + ATG + rituximab"), c("cy-alemtuzumab", "Cyclophosphamide + alemtuzumab"),
        c("cy", "Cyclophosphamide alone"), c("flu-cy", "Fludarabine + cyclophosphamide"),
        c("flu-cy-atg", "Fludarabine + cyclophosphamide + ATG"), c("bu-cy", "Busulfan + cyclophosphamide"),
        c("bu-cy-atg", "Busulfan + cyclophosphamide + ATG"), c("tbi-cy-atg", "TBI + cyclophosphamide + ATG"),
        c("treo-flu", "Treosulfan + fludarabine"), c("mel", "Melphalan"), c("other", "Other regimen"),
    ]),
    "engraft-intensity": ("Engraft regimen intensity", "Conditioning intensity as reported by the registry (never derived).", [], [
        c("high", "High intensity"), c("intermediate", "Intermediate intensity"), c("low", "Low intensity"),
    ]),
    "engraft-donor-type": ("Engraft donor type", "Donor type of a transplant.", [], [
        c("autologous", "Autologous"), c("allogeneic-related", "Allogeneic, related donor"),
        c("allogeneic-unrelated", "Allogeneic, unrelated donor"), c("syngeneic", "Syngeneic (identical twin)"),
    ]),
    "engraft-stem-cell-source": ("Engraft stem cell source", "Stem cell source of a graft.", [], [
        c("peripheral-blood", "Peripheral blood"), c("bone-marrow", "Bone marrow"), c("cord", "Cord blood (single unit)"),
        c("multiple-cord", "Cord blood (multiple units)"), c("peripheral-blood-and-bone-marrow", "Peripheral blood and bone marrow"),
    ]),
    "engraft-graft-manipulation": ("Engraft graft manipulation", "Graft manipulation.", [], [
        c("none", "No manipulation"), c("cd34-selection", "CD34+ selection"), c("t-cell-depletion", "T-cell depletion"),
        c("other", "Other manipulation"),
    ]),
    "engraft-recovery-status": ("Engraft recovery status", "Haematopoietic recovery outcome when no recovery date applies.", [], [
        c("not-evaluable", "Not evaluable", "Death or another event before recovery could be judged (not graft failure)."),
        c("failure", "Graft failure", "No recovery by day +30 (PB/BM) or +42 (cord)."),
    ]),
    "engraft-response": ("Engraft disease response", "Disease status at follow-up.", [], [
        c("cr", "Complete response / remission"), c("pr", "Partial response"), c("sd", "Stable disease"),
        c("pd", "Progressive disease"), c("relapse", "Relapse"), c("neda", "No evidence of disease activity (NEDA-3)"),
        c("eda", "Evidence of disease activity"), c("low-disease-activity", "Low disease activity"),
        c("not-evaluable", "Not evaluable"),
    ]),
    "engraft-complication": ("Engraft complication", "Post-transplant complications.", [], [
        c("infection", "Infection", children=[
            c("infection-bacterial", "Bacterial infection"), c("infection-viral", "Viral infection"),
            c("infection-fungal", "Fungal infection")]),
        c("cmv-reactivation", "CMV reactivation"), c("ebv-reactivation", "EBV reactivation"),
        c("febrile-neutropenia", "Febrile neutropenia"), c("mucositis", "Mucositis"),
        c("cardiac-toxicity", "Cardiac toxicity"), c("renal-toxicity", "Renal toxicity"),
        c("hepatic-toxicity", "Hepatic toxicity"), c("engraftment-syndrome", "Engraftment syndrome"),
        c("vod", "Veno-occlusive disease / sinusoidal obstruction syndrome"),
        c("tma", "Transplant-associated thrombotic microangiopathy"),
        c("acute-gvhd", "Acute graft-versus-host disease"), c("chronic-gvhd", "Chronic graft-versus-host disease"),
        c("graft-failure", "Graft failure"),
        c("secondary-autoimmunity", "Secondary autoimmunity", children=[
            c("secondary-itp", "Immune thrombocytopenia (secondary autoimmunity)"),
            c("secondary-thyroid", "Autoimmune thyroid disease (secondary autoimmunity)"),
            c("secondary-graves", "Graves' disease (secondary autoimmunity)")]),
        c("gonadal-failure", "Gonadal failure"), c("secondary-malignancy", "Secondary malignancy"),
        c("ptld", "Post-transplant lymphoproliferative disorder"),
    ]),
    "engraft-grade": ("Engraft complication grade", "Grades as reported: acute GvHD (I-IV), chronic GvHD (NIH and legacy), CTCAE 1-5.", [], [
        c("I", "Grade I"), c("II", "Grade II"), c("III", "Grade III"), c("IV", "Grade IV"),
        c("mild", "Mild (NIH)"), c("moderate", "Moderate (NIH)"), c("severe", "Severe (NIH)"),
        c("limited", "Limited (legacy)"), c("extensive", "Extensive (legacy)"),
        c("1", "CTCAE grade 1"), c("2", "CTCAE grade 2"), c("3", "CTCAE grade 3"), c("4", "CTCAE grade 4"), c("5", "CTCAE grade 5"),
    ]),
    "engraft-organ": ("Engraft organ", "Organs affected by a complication.", [], [
        c("skin", "Skin"), c("liver", "Liver"), c("gut-upper", "Upper gastrointestinal tract"),
        c("gut-lower", "Lower gastrointestinal tract"), c("gut", "Gastrointestinal tract"), c("lung", "Lung"),
        c("kidney", "Kidney"), c("heart", "Heart"), c("eye", "Eye"), c("mouth", "Mouth"), c("joint", "Joints"),
        c("cns", "Central nervous system"), c("bone-marrow", "Bone marrow"), c("thyroid", "Thyroid"),
        c("blood", "Blood"), c("gonad", "Gonads"),
    ]),
    "engraft-stop-reason": ("Engraft therapy stop reason", "Why a prior therapy was stopped.", [], [
        c("failure", "Treatment failure"), c("intolerance", "Intolerance or toxicity"),
        c("safety", "Safety concern (e.g. PML risk)"), c("patient-choice", "Patient choice"),
        c("pregnancy", "Pregnancy"), c("completed", "Course completed"), c("other", "Other"),
    ]),
    # Time points: targetDay and windowDays are the registry rules for "day 100 +/- 14" etc.
    "engraft-time-point": ("Engraft follow-up time point", "Registry follow-up time points with their target day and window.", [
        ("targetDay", "integer"), ("windowDays", "integer")], [
        c("D30", "Day 30", None, {"targetDay": 30, "windowDays": 7}),
        c("D100", "Day 100", None, {"targetDay": 100, "windowDays": 14}),
        c("M6", "Month 6", None, {"targetDay": 182, "windowDays": 30}),
        *[c(f"Y{n}", f"Year {n}", None, {"targetDay": 365 * n, "windowDays": 60}) for n in range(1, 11)],
        c("unscheduled", "Unscheduled assessment"),
    ]),
    "engraft-vital-status": ("Engraft vital status", "Vital status at last contact.", [], [
        c("alive", "Alive"), c("dead", "Dead"), c("unknown", "Unknown"),
    ]),
    "engraft-cause-of-death": ("Engraft cause of death", "Main cause of death (EBMT/CIBMTR categories).", [], [
        c("primary-disease", "Relapse or progression of the autoimmune disease"),
        c("infection", "Transplant-related: infection"), c("gvhd", "Transplant-related: GvHD"),
        c("organ-toxicity", "Transplant-related: organ toxicity"), c("graft-failure", "Transplant-related: graft failure"),
        c("hsct-related-other", "Transplant-related: other"), c("secondary-malignancy", "Secondary malignancy"),
        c("other", "Other cause"), c("unknown", "Unknown cause"),
    ]),
    "engraft-issue": ("Engraft issue", "Stable codes of the problems Engraft reports for registry records.", [], []),  # filled below
}

ISSUE_CODES = [
    ("structure", "The record does not have the shape of the registry record schema."),
    ("json-syntax", "The input is not well-formed JSON."),
    ("csv-syntax", "The CSV input cannot be read."),
    ("csv-column", "A CSV column is unknown or a required column is missing."),
    ("number-format", "A number cannot be read (decimal comma or separator rules)."),
    ("date-format", "A date is not a valid FHIR partial date."),
    ("time-without-zone", "A time of day without a zone was dropped; only the date is sent."),
    ("date-order", "Two dates are in an impossible order."),
    ("id-format", "A registry identifier has characters that cannot be used in identifiers and URLs."),
    ("missing-mandatory", "A mandatory (MED-A) item is blank."),
    ("unknown-code", "A code is not in the Engraft CodeSystem it must come from."),
    ("scale-range", "A score is outside its scale's range."),
    ("scale-step", "A score is not one of its scale's valid values."),
    ("scale-variant", "A score needs its variant or disease context (DAS28 ESR/CRP, CDAI)."),
    ("unit-invalid", "A unit is missing or not allowed for this item."),
    ("implausible-value", "A value is outside the plausible range for its unit."),
    ("donor-on-autologous", "Donor items on an autologous transplant are ignored."),
    ("gvhd-autologous", "GvHD is reported after an autologous transplant."),
    ("atg-product", "ATG must be coded at product level (rabbit or horse)."),
    ("consent-not-given", "Consent is withdrawn or refused: the record must not be exported."),
    ("consent-not-asked", "Consent was not asked: no Consent resource is sent."),
    ("vital-status-conflict", "Vital status, death date and last contact contradict each other."),
    ("edss-death-conflict", "EDSS 10 (death due to MS) and the vital status contradict each other."),
    ("engraftment-date-missing", "An engrafted recovery needs its date."),
    ("engraftment-early", "A recovery date this soon after day 0 may predate the nadir."),
    ("engraftment-failure-early", "Graft failure cannot be declared before day +30 (+42 for cord)."),
    ("engraftment-after-death", "A recovery is dated after death or after the next transplant."),
    ("transplant-order", "Transplant numbers are not unique or not in date order."),
    ("transplant-reference", "A follow-up names a transplant the record does not have."),
    ("time-point-window", "A follow-up date is outside its time point's window."),
    ("code-version", "A source code does not exist in the declared system version."),
    ("code-system-mismatch", "A source code does not belong to the declared system."),
    ("snomed-extension", "A SNOMED CT extension concept is kept next to an International code."),
    ("regimen-unmapped", "A free-text regimen name is not in the regimen map."),
    ("performance-age", "The performance scale does not fit the patient's age (Lansky < 16 <= Karnofsky)."),
    ("absent-value", "A value and its absent reason are both given, or both missing."),
    ("diagnosis-missing", "The record has no diagnosis valid at day 0."),
]

# ---------------------------------------------------------------------------------------------
# ConceptMaps: name -> (title, source CodeSystem, [(targetSystem, targetVersion, [(source, target, display, dependsOn|None)])])
# ---------------------------------------------------------------------------------------------
CONCEPT_MAPS = {
    "engraft-disease-to-standard": ("Disease to SNOMED CT and ICD-10", "engraft-disease", [
        (SCT, None, [
            ("multiple-sclerosis", "24700007", "Multiple sclerosis", None),
            ("rrms", "426373005", "Relapsing remitting multiple sclerosis", None),
            ("spms", "425500002", "Secondary progressive multiple sclerosis", None),
            ("ppms", "428700003", "Primary progressive multiple sclerosis", None),
            ("aggressive-ms", "24700007", "Multiple sclerosis", None),
            ("nmosd", "25044007", "Neuromyelitis optica", None),
            ("cidp", "128209004", "Chronic inflammatory demyelinating polyradiculoneuropathy", None),
            ("myasthenia-gravis", "91637004", "Myasthenia gravis", None),
            ("systemic-sclerosis", "89155008", "Systemic sclerosis", None),
            ("diffuse-cutaneous-ssc", "89155008", "Systemic sclerosis", None),
            ("limited-cutaneous-ssc", "89155008", "Systemic sclerosis", None),
            ("sle", "55464009", "Systemic lupus erythematosus", None),
            ("lupus-nephritis", "68815009", "Systemic lupus erythematosus glomerulonephritis syndrome", None),
            ("rheumatoid-arthritis", "69896004", "Rheumatoid arthritis", None),
            ("crohns-disease", "34000006", "Crohn's disease", None),
            ("type-1-diabetes", "46635009", "Diabetes mellitus type 1", None),
            ("vasculitis", "31996006", "Vasculitis", None),
            ("anca-vasculitis", "722191003", "ANCA positive vasculitis", None),
            ("gpa", "195353004", "Granulomatosis with polyangiitis", None),
            ("mpa", "239928004", "Microscopic polyarteritis nodosa", None),
            ("behcet", "310701003", "Behcet's syndrome", None),
        ]),
        (ICD10CM, "2026", [
            ("multiple-sclerosis", "G35.D", "Multiple sclerosis, unspecified", None),
            ("rrms", "G35.A", "Relapsing-remitting multiple sclerosis", None),
            ("spms", "G35.C0", "Secondary progressive multiple sclerosis, unspecified", None),
            ("ppms", "G35.B0", "Primary progressive multiple sclerosis, unspecified", None),
            ("aggressive-ms", "G35.D", "Multiple sclerosis, unspecified", None),
            ("nmosd", "G36.0", "Neuromyelitis optica [Devic]", None),
            ("cidp", "G61.81", "Chronic inflammatory demyelinating polyneuritis", None),
            ("myasthenia-gravis", "G70.00", "Myasthenia gravis without (acute) exacerbation", None),
            ("systemic-sclerosis", "M34.9", "Systemic sclerosis, unspecified", None),
            ("diffuse-cutaneous-ssc", "M34.0", "Progressive systemic sclerosis", None),
            ("limited-cutaneous-ssc", "M34.1", "CR(E)ST syndrome", None),
            ("sle", "M32.9", "Systemic lupus erythematosus, unspecified", None),
            ("lupus-nephritis", "M32.14", "Glomerular disease in systemic lupus erythematosus", None),
            ("rheumatoid-arthritis", "M06.9", "Rheumatoid arthritis, unspecified", None),
            ("crohns-disease", "K50.90", "Crohn's disease, unspecified, without complications", None),
            ("type-1-diabetes", "E10.9", "Type 1 diabetes mellitus without complications", None),
            ("vasculitis", "I77.6", "Arteritis, unspecified", None),
            ("anca-vasculitis", "I77.82", "ANCA vasculitis", None),
            ("gpa", "M31.30", "Wegener's granulomatosis without renal involvement", None),
            ("mpa", "M31.7", "Microscopic polyangiitis", None),
            ("behcet", "M35.2", "Behcet's disease", None),
        ]),
    ]),
    "engraft-transplant-to-snomed": ("Donor type and stem cell source to SNOMED CT HSCT procedure", "engraft-donor-type", [
        (SCT, None, [
            ("autologous|peripheral-blood", "425983008", "Autologous peripheral blood stem cell transplant", None),
            ("autologous|bone-marrow", "58776007", "Autologous bone marrow transplant", None),
            ("allogeneic-related|peripheral-blood", "425843001", "Allogeneic peripheral blood stem cell transplant", None),
            ("allogeneic-unrelated|peripheral-blood", "425843001", "Allogeneic peripheral blood stem cell transplant", None),
            ("syngeneic|peripheral-blood", "425843001", "Allogeneic peripheral blood stem cell transplant", None),
            ("allogeneic-related|bone-marrow", "58390007", "Allogeneic bone marrow transplantation", None),
            ("syngeneic|bone-marrow", "58390007", "Allogeneic bone marrow transplantation", None),
            ("allogeneic-unrelated|bone-marrow", "234335003", "Allogeneic unrelated bone marrow transplant", None),
        ]),
    ]),
    "engraft-scale-to-code": ("Assessment scale to observation code", "engraft-scale", [
        (LOINC, None, [
            ("fvc-percent", "19872-1", "FVC measured/predicted", None),
            ("dlco-percent", "98130-8", "Diffusion capacity.carbon monoxide/Predicted", None),
            ("cdai", "75847-4", "Clinical disease activity index total score", ("disease", "rheumatoid-arthritis")),
            ("sdai", "75845-8", "Simplified disease activity index total score", None),
        ]),
        (cs_url("engraft-observation"), None, [
            *[(k, k, None, None) for k in ["edss", "mrss", "lvef", "sledai-2k", "das28-esr", "das28-crp", "crohn-cdai", "ses-cd", "incat", "bvas", "mri-new-t2", "mri-gd", "insulin-dose", "hct-ci"]],
            ("cdai", "crohn-cdai", None, ("disease", "crohns-disease")),
        ]),
    ]),
    "engraft-performance-to-code": ("Performance scale to observation code", "engraft-observation", [
        (LOINC, None, [
            ("karnofsky", "89243-0", "Karnofsky Performance Status score", None),
            ("ecog", "89247-1", "ECOG Performance Status score", None),
        ]),
        (cs_url("engraft-observation"), None, [("lansky", "lansky", None, None)]),
    ]),
    "engraft-lab-to-code": ("Laboratory test to LOINC", "engraft-lab", [
        (LOINC, None, [
            ("anc", "751-8", "Neutrophils [#/volume] in Blood by Automated count", None),
            ("platelets", "777-3", "Platelets [#/volume] in Blood by Automated count", None),
            ("wbc", "6690-2", "Leukocytes [#/volume] in Blood by Automated count", None),
            ("lymphocytes", "731-0", "Lymphocytes [#/volume] in Blood", None),
            ("hemoglobin", "718-7", "Hemoglobin [Mass/volume] in Blood", None),
            ("creatinine", "2160-0", "Creatinine [Mass/volume] in Serum or Plasma", None),
            ("bilirubin", "1975-2", "Bilirubin.total [Mass/volume] in Serum or Plasma", None),
            ("cmv-dna", "29604-6", "Cytomegalovirus DNA [#/volume] (viral load) in Blood by NAA with probe detection", None),
            ("cd34-blood", "74838-4", "CD34 cells [#/volume] in Specimen", None),
            ("dlco", "19911-7", "Diffusion capacity.carbon monoxide", None),
        ]),
        (cs_url("engraft-observation"), None, [
            ("ebv-dna", "lab-ebv-dna", None, None), ("c-peptide", "lab-c-peptide", None, None),
            ("hba1c", "lab-hba1c", None, None),
        ]),
    ]),
    "engraft-drug-to-rxnorm": ("Drug to RxNorm (ingredient level; ATG at product level)", "engraft-drug", [
        (RXNORM, None, [
            ("cyclophosphamide", "3002", "cyclophosphamide", None), ("carmustine", "2105", "carmustine", None),
            ("etoposide", "4179", "etoposide", None), ("cytarabine", "3041", "cytarabine", None),
            ("melphalan", "6718", "melphalan", None), ("fludarabine", "24698", "fludarabine", None),
            ("busulfan", "1828", "busulfan", None), ("thiotepa", "10473", "thiotepa", None),
            ("treosulfan", "38508", "treosulfan", None), ("rituximab", "121191", "rituximab", None),
            ("alemtuzumab", "117055", "alemtuzumab", None), ("filgrastim", "68442", "filgrastim", None),
            ("lenograstim", "70167", "lenograstim", None), ("pegfilgrastim", "338036", "pegfilgrastim", None),
            ("plerixafor", "733003", "plerixafor", None),
            ("atg-rabbit", "225741", "Thymoglobulin", None),
            ("atg-horse", "91601", "lymphocyte immune globulin, anti-thymocyte globulin (equine)", None),
        ]),
    ]),
    "engraft-complication-to-standard": ("Complication to SNOMED CT and ICD-10-CM", "engraft-complication", [
        (SCT, None, [
            ("acute-gvhd", "402355000", "Acute graft-versus-host disease", None),
            ("chronic-gvhd", "402356004", "Chronic graft-versus-host disease", None),
            ("vod", "65617004", "Veno-occlusive disease of the liver", None),
            ("graft-failure", "234520000", "Failed bone marrow transplant engraftment", None),
        ]),
        (ICD10CM, "2026", [
            ("acute-gvhd", "D89.810", "Acute graft-versus-host disease", None),
            ("chronic-gvhd", "D89.811", "Chronic graft-versus-host disease", None),
            ("tma", "M31.11", "Hematopoietic stem cell transplantation-associated thrombotic microangiopathy", None),
            ("secondary-itp", "D69.3", "Immune thrombocytopenic purpura", None),
            ("secondary-thyroid", "E06.3", "Autoimmune thyroiditis", None),
            ("secondary-graves", "E05.00", "Thyrotoxicosis with diffuse goiter without thyrotoxic crisis or storm", None),
            ("ptld", "D47.Z1", "Post-transplant lymphoproliferative disorder (PTLD)", None),
        ]),
    ]),
    # Free-text regimen names, normalised (upper case, letters and digits only), to regimen codes.
    "engraft-regimen-text": ("Free-text conditioning regimen names to regimen codes", "engraft-regimen", [
        (cs_url("engraft-regimen"), None, [
            *[(k, v, None, None) for k, v in [
                ("BEAM", "beam"), ("BEAMATG", "beam-atg"), ("BEAMHATG", "beam-atg"), ("BEAMRATG", "beam-atg"),
                ("BEAMPLUSATG", "beam-atg"), ("CYATG", "cy-atg"), ("CY200ATG", "cy-atg"), ("CY200RATG", "cy-atg"),
                ("CYRATG", "cy-atg"), ("CYHATG", "cy-atg"), ("CYCLOPHOSPHAMIDEATG", "cy-atg"),
                ("CYATGRITUX", "cy-atg-rituximab"), ("CYATGRITUXIMAB", "cy-atg-rituximab"), ("CYRATGRITUX", "cy-atg-rituximab"),
                ("CYALEMTUZUMAB", "cy-alemtuzumab"), ("CYCAMPATH", "cy-alemtuzumab"), ("CY200", "cy"), ("CY", "cy"),
                ("FLUCY", "flu-cy"), ("FLUCYATG", "flu-cy-atg"), ("BUCY", "bu-cy"), ("BUCYATG", "bu-cy-atg"),
                ("TBICYATG", "tbi-cy-atg"), ("TBICY", "tbi-cy-atg"), ("TREOFLU", "treo-flu"), ("MEL200", "mel"), ("MEL", "mel"),
            ]],
        ]),
    ]),
}

# ---------------------------------------------------------------------------------------------
# Extensions: name -> (title, context element, value type, description)
# ---------------------------------------------------------------------------------------------
EXTENSIONS = {
    "donor-type": ("Donor type", ["Procedure"], "CodeableConcept", "Donor type of the transplant (autologous, allogeneic related/unrelated, syngeneic).", "engraft-donor-type"),
    "stem-cell-source": ("Stem cell source", ["Procedure", "BiologicallyDerivedProduct"], "CodeableConcept", "Stem cell source of the graft.", "engraft-stem-cell-source"),
    "hsct-product": ("Infused product", ["Procedure"], "Reference", "The stem cell product infused (R4 Procedure.usedReference cannot reference BiologicallyDerivedProduct).", None),
    "regimen-intensity": ("Regimen intensity", ["Procedure"], "CodeableConcept", "Conditioning intensity as reported by the registry.", "engraft-intensity"),
    "total-dose": ("Total dose", ["MedicationAdministration"], "Quantity", "Total dose over the course, as recorded by the registry.", None),
    "tbi-dose": ("TBI total dose", ["Procedure"], "Quantity", "Total body irradiation dose in Gy.", None),
    "tbi-fractions": ("TBI fractions", ["Procedure"], "positiveInt", "Number of TBI fractions.", None),
    "date-estimated": ("Estimated date", ["Element"], "boolean", "The source registry estimated this date (CIBMTR allows estimated dates).", None),
    "relative-to-transplant": ("Relative to transplant", ["Observation", "Encounter", "MedicationStatement", "Condition"], "Reference", "The HSCT (day 0) that day-relative values of this resource count from.", None),
}

# ---------------------------------------------------------------------------------------------
# Profiles: name -> (title, base type, description, [element rules])
# rule: dict(path=..., min=, max=, mustSupport=, binding=(strength, vs), patternCodeableConcept=..., fixedCode=..., type=[...])
# ---------------------------------------------------------------------------------------------

def cc(system, code, display=None):
    coding = {"system": system, "code": code}
    if display:
        coding["display"] = display
    return {"coding": [coding]}


def ext_slice(path, name, ext, min_=0, max_="1"):
    return [
        dict(path=f"{path}.extension", slicing=True),
        dict(path=f"{path}.extension", sliceName=name, min=min_, max=max_, type=[{"code": "Extension", "profile": [ext if ext.startswith("http") else sd_url(ext)]}]),
    ]


def ref(path, *targets, min_=None, max_=None):
    r = dict(path=path, type=[{"code": "Reference", "targetProfile": [f"http://hl7.org/fhir/StructureDefinition/{t}" if "/" not in t else t for t in targets]}])
    if min_ is not None:
        r["min"] = min_
    if max_ is not None:
        r["max"] = max_
    return r


def obs_profile(title, desc, code_vs=None, code_pattern=None, value_types=None, category=None, extra=None):
    rules = [
        dict(path="Observation.identifier", min=1),
        dict(path="Observation.status", fixedCode="final"),
        ref("Observation.subject", "Patient", min_=1),
    ]
    if category:
        rules.append(dict(path="Observation.category", min=1, patternCodeableConcept=cc("http://terminology.hl7.org/CodeSystem/observation-category", category)))
    if code_pattern:
        rules.append(dict(path="Observation.code", patternCodeableConcept=code_pattern))
    if code_vs:
        rules.append(dict(path="Observation.code", binding=("required", vs_url(code_vs))))
    if value_types:
        rules.append(dict(path="Observation.value[x]", type=[{"code": t} for t in value_types]))
    # The day-post-HSCT component: a pattern-discriminated slice of component.
    rules += [
        dict(path="Observation.component", slicing={"discriminator": [{"type": "pattern", "path": "code"}], "ordered": False, "rules": "open"}),
        dict(path="Observation.component", sliceName="dayPostHsct", min=0, max="1"),
        dict(id="Observation.component:dayPostHsct.code", patternCodeableConcept=cc(cs_url("engraft-observation"), "day-post-hsct")),
        dict(id="Observation.component:dayPostHsct.value[x]", min=1, type=[{"code": "Quantity"}], constraint=[
            ("eng-1", "The day after HSCT is a whole number of days in UCUM d", "system = 'http://unitsofmeasure.org' and code = 'd' and value.toString().contains('.').not()")]),
    ]
    return (title, "Observation", desc, rules + (extra or []))


PROFILES = {
    "engraft-bundle": ("Engraft transaction bundle", "Bundle", "A transaction Bundle built from one registry record.", [
        dict(path="Bundle.type", fixedCode="transaction"),
        dict(path="Bundle.timestamp", min=1),
        dict(path="Bundle.entry", min=2),
        dict(path="Bundle.entry.fullUrl", min=1),
        dict(path="Bundle.entry.resource", min=1),
        dict(path="Bundle.entry.request", min=1),
        # Exactly one patient and one provenance entry, told apart by the profile they meet.
        dict(path="Bundle.entry", slicing={"discriminator": [{"type": "profile", "path": "resource"}], "ordered": False, "rules": "open"}),
        dict(path="Bundle.entry", sliceName="patient", min=1, max="1"),
        dict(id="Bundle.entry:patient.resource", min=1, type=[{"code": "Patient", "profile": [sd_url("engraft-patient")]}]),
        dict(path="Bundle.entry", sliceName="provenance", min=1, max="1"),
        dict(id="Bundle.entry:provenance.resource", min=1, type=[{"code": "Provenance", "profile": [sd_url("engraft-provenance")]}]),
    ]),
    "engraft-patient": ("Engraft SCT patient", "Patient", "The transplant recipient, identified by centre-scoped registry UPN.", [
        dict(path="Patient.identifier", min=1),
        # The registry UPN: the identifier whose type is RI (a pattern-discriminated slice).
        dict(path="Patient.identifier", slicing={"discriminator": [{"type": "pattern", "path": "type"}], "ordered": False, "rules": "open"}),
        dict(path="Patient.identifier", sliceName="upn", min=1, max="1"),
        dict(id="Patient.identifier:upn.type", min=1, patternCodeableConcept=cc(V2_0203, "RI")),
        dict(id="Patient.identifier:upn.system", min=1),
        dict(id="Patient.identifier:upn.value", min=1),
        dict(path="Patient.gender", min=1),
        dict(path="Patient.birthDate", min=1),
        dict(path="Patient.name", max="0"),
        dict(path="Patient.address", max="0"),
        dict(path="Patient.telecom", max="0"),
        dict(path="Patient.photo", max="0"),
    ]),
    "engraft-consent": ("Engraft research consent", "Consent", "The patient's consent to registry data transfer.", [
        dict(path="Consent.status", binding=("required", vs_url("engraft-consent-state"))),
        ref("Consent.patient", "Patient", min_=1),
        dict(path="Consent.scope", patternCodeableConcept=cc("http://terminology.hl7.org/CodeSystem/consentscope", "research")),
        dict(path="Consent.provision", min=1),
        dict(path="Consent.provision.type", min=1),
    ]),
    "engraft-autoimmune-condition": ("Engraft autoimmune disease", "Condition", "The autoimmune indication for HSCT.", [
        dict(path="Condition.identifier", min=1),
        dict(path="Condition.clinicalStatus", min=1),
        dict(path="Condition.verificationStatus", min=1),
        dict(path="Condition.code", min=1),
        dict(path="Condition.code.coding", min=1),
        ref("Condition.subject", "Patient", min_=1),
        dict(path="Condition.abatement[x]", type=[{"code": "dateTime"}]),
    ]),
    "engraft-complication": ("Engraft post-transplant complication", "Condition", "A complication after HSCT, due to the transplant.", [
        dict(path="Condition.identifier", min=1),
        dict(path="Condition.clinicalStatus", min=1),
        dict(path="Condition.code", min=1),
        ref("Condition.subject", "Patient", min_=1),
        dict(path="Condition.onset[x]", min=1, type=[{"code": "dateTime"}]),
        *ext_slice("Condition", "dueTo", DUE_TO, 1, "1"),
    ]),
    "engraft-gvhd": ("Engraft graft-versus-host disease", "Condition", "Acute or chronic GvHD after allogeneic HSCT, with its grade.", [
        dict(path="Condition.identifier", min=1),
        dict(path="Condition.clinicalStatus", min=1),
        dict(path="Condition.code", min=1),
        ref("Condition.subject", "Patient", min_=1),
        dict(path="Condition.onset[x]", min=1, type=[{"code": "dateTime"}]),
        dict(path="Condition.stage.summary", binding=("required", vs_url("engraft-gvhd-grade"))),
        *ext_slice("Condition", "dueTo", DUE_TO, 1, "1"),
    ]),
    "engraft-prior-therapy": ("Engraft prior therapy", "MedicationStatement", "A disease-modifying or immunosuppressive therapy before HSCT.", [
        dict(path="MedicationStatement.identifier", min=1),
        dict(path="MedicationStatement.medication[x]", type=[{"code": "CodeableConcept"}]),
        ref("MedicationStatement.subject", "Patient"),
        dict(path="MedicationStatement.statusReason", binding=("required", vs_url("engraft-stop-reason"))),
    ]),
    "engraft-therapy-restart": ("Engraft therapy restart", "MedicationStatement", "Immunosuppression or DMT restarted after HSCT.", [
        dict(path="MedicationStatement.identifier", min=1),
        dict(path="MedicationStatement.medication[x]", type=[{"code": "CodeableConcept"}]),
        ref("MedicationStatement.subject", "Patient"),
        dict(path="MedicationStatement.effective[x]", min=1, type=[{"code": "Period"}]),
        *ext_slice("MedicationStatement", "relativeToTransplant", "relative-to-transplant", 1, "1"),
    ]),
    "engraft-hsct-procedure": ("Engraft haematopoietic stem cell transplant", "Procedure", "One HSCT; performed[x] is day 0 (or the multi-day infusion period starting at day 0).", [
        dict(path="Procedure.identifier", min=1),
        dict(path="Procedure.status", fixedCode="completed"),
        dict(path="Procedure.category", min=1, patternCodeableConcept=cc(SCT, "77465005")),
        dict(path="Procedure.code", min=1, patternCodeableConcept=cc(SCT, "234336002")),
        ref("Procedure.subject", "Patient"),
        dict(path="Procedure.performed[x]", min=1, type=[{"code": "dateTime"}, {"code": "Period"}]),
        *ext_slice("Procedure", "donorType", "donor-type", 1, "1"),
        dict(path="Procedure.extension", sliceName="stemCellSource", min=1, max="1", type=[{"code": "Extension", "profile": [sd_url("stem-cell-source")]}]),
        dict(path="Procedure.extension", sliceName="product", min=0, max="1", type=[{"code": "Extension", "profile": [sd_url("hsct-product")]}]),
    ]),
    "engraft-mobilisation-procedure": ("Engraft mobilisation", "Procedure", "Stem cell mobilisation.", [
        dict(path="Procedure.identifier", min=1),
        dict(path="Procedure.status", fixedCode="completed"),
        dict(path="Procedure.code", min=1, patternCodeableConcept=cc(cs_url("engraft-procedure"), "mobilisation")),
        ref("Procedure.subject", "Patient"),
        dict(path="Procedure.performed[x]", min=1, type=[{"code": "Period"}]),
    ]),
    "engraft-apheresis-procedure": ("Engraft apheresis", "Procedure", "One day of peripheral blood stem cell collection.", [
        dict(path="Procedure.identifier", min=1),
        dict(path="Procedure.status", fixedCode="completed"),
        dict(path="Procedure.code", min=1, patternCodeableConcept=cc(SCT, "418576007")),
        ref("Procedure.subject", "Patient"),
        dict(path="Procedure.performed[x]", min=1, type=[{"code": "dateTime"}]),
        ref("Procedure.partOf", "Procedure", min_=1),
    ]),
    "engraft-conditioning-procedure": ("Engraft conditioning regimen", "Procedure", "The conditioning regimen; drugs are MedicationAdministrations partOf it.", [
        dict(path="Procedure.identifier", min=1),
        dict(path="Procedure.status", fixedCode="completed"),
        dict(path="Procedure.code", min=1, patternCodeableConcept=cc(cs_url("engraft-procedure"), "conditioning")),
        ref("Procedure.subject", "Patient"),
        dict(path="Procedure.performed[x]", min=1, type=[{"code": "Period"}]),
        ref("Procedure.partOf", "Procedure", min_=1),
        *ext_slice("Procedure", "intensity", "regimen-intensity"),
    ]),
    "engraft-tbi-procedure": ("Engraft total body irradiation", "Procedure", "TBI as part of conditioning.", [
        dict(path="Procedure.identifier", min=1),
        dict(path="Procedure.status", fixedCode="completed"),
        dict(path="Procedure.code", min=1, patternCodeableConcept=cc(SCT, "1287742003")),
        ref("Procedure.subject", "Patient"),
        dict(path="Procedure.performed[x]", min=1, type=[{"code": "Period"}]),
        ref("Procedure.partOf", "Procedure", min_=1),
        *ext_slice("Procedure", "dose", "tbi-dose", 1, "1"),
        dict(path="Procedure.extension", sliceName="fractions", min=1, max="1", type=[{"code": "Extension", "profile": [sd_url("tbi-fractions")]}]),
    ]),
    "engraft-supplemental-infusion": ("Engraft supplemental infusion", "Procedure", "A boost, top-up or DLI: cells given apart from day 0, not a new HSCT.", [
        dict(path="Procedure.identifier", min=1),
        dict(path="Procedure.status", fixedCode="completed"),
        dict(path="Procedure.code", min=1, binding=("required", vs_url("engraft-supplemental-infusion"))),
        ref("Procedure.subject", "Patient"),
        dict(path="Procedure.performed[x]", min=1, type=[{"code": "dateTime"}]),
        ref("Procedure.partOf", "Procedure", min_=1),
    ]),
    "engraft-stem-cell-product": ("Engraft stem cell product", "BiologicallyDerivedProduct", "The collected graft; several apheresis days of one mobilisation are one product.", [
        dict(path="BiologicallyDerivedProduct.identifier", min=1),
        dict(path="BiologicallyDerivedProduct.productCategory", min=1, fixedCode="cells"),
        dict(path="BiologicallyDerivedProduct.productCode", min=1, binding=("required", vs_url("engraft-stem-cell-source"))),
        *ext_slice("BiologicallyDerivedProduct", "source", "stem-cell-source", 1, "1"),
    ]),
    "engraft-medication-administration": ("Engraft regimen drug", "MedicationAdministration", "A drug of a mobilisation or conditioning regimen; dose basis explicit in the UCUM unit.", [
        dict(path="MedicationAdministration.identifier", min=1),
        dict(path="MedicationAdministration.status", fixedCode="completed"),
        dict(path="MedicationAdministration.medication[x]", type=[{"code": "CodeableConcept"}]),
        ref("MedicationAdministration.subject", "Patient"),
        ref("MedicationAdministration.partOf", "Procedure", min_=1),
        dict(path="MedicationAdministration.dosage", min=1),
        dict(path="MedicationAdministration.dosage.dose", min=1, constraint=[
            ("eng-2", "A regimen dose is greater than zero", "value > 0")]),
        dict(path="MedicationAdministration.dosage.dose.system", min=1, fixedUri=UCUM),
        dict(path="MedicationAdministration.dosage.dose.code", min=1),
        *ext_slice("MedicationAdministration", "totalDose", "total-dose"),
    ]),
    "engraft-followup-encounter": ("Engraft follow-up visit", "Encounter", "A follow-up assessment at a registry time point; type carries the time point.", [
        dict(path="Encounter.identifier", min=1),
        dict(path="Encounter.status", fixedCode="finished"),
        dict(path="Encounter.type", min=1, max="1", binding=("required", vs_url("engraft-time-point"))),
        ref("Encounter.subject", "Patient", min_=1),
        dict(path="Encounter.period", min=1),
        dict(path="Encounter.period.start", min=1),
        *ext_slice("Encounter", "relativeToTransplant", "relative-to-transplant", 1, "1"),
    ]),
    "engraft-cell-dose": obs_profile("Engraft cell dose", "CD34+ or TNC dose infused, or CD34+ collected.", code_vs="engraft-cell-dose-code", value_types=["Quantity"], category="laboratory", extra=[
        dict(path="Observation.value[x]", min=1),
        ref("Observation.partOf", "Procedure", min_=1),
    ]),
    "engraft-engraftment": obs_profile("Engraft haematopoietic recovery", "Neutrophil or platelet engraftment: the recovery date, or why there is none.", code_vs="engraft-engraftment-code", value_types=["dateTime", "CodeableConcept"], category="laboratory", extra=[
        ref("Observation.partOf", "Procedure", min_=1),
    ]),
    "engraft-disease-score": obs_profile("Engraft disease score", "A disease activity or organ function score (EDSS, mRSS, FVC %, SLEDAI-2K, DAS28...).", code_vs="engraft-score-code", value_types=["Quantity", "integer"]),
    "engraft-performance-status": obs_profile("Engraft performance status", "Karnofsky, Lansky or ECOG before HSCT.", code_vs="engraft-performance-code", value_types=["integer"], category="survey"),
    "engraft-lab": obs_profile("Engraft laboratory result", "A laboratory value, normalised to its canonical UCUM unit.", code_vs="engraft-lab-code", value_types=["Quantity"], category="laboratory", extra=[
        dict(path="Observation.value[x]", min=1),
        # value[x] sliced by type, closed: only a UCUM Quantity.
        dict(path="Observation.value[x]", slicing={"discriminator": [{"type": "type", "path": "$this"}], "ordered": False, "rules": "closed"}),
        dict(path="Observation.value[x]", sliceName="valueQuantity", min=0, max="1", type=[{"code": "Quantity"}]),
        dict(id="Observation.value[x]:valueQuantity.system", min=1, fixedUri=UCUM),
        dict(id="Observation.value[x]:valueQuantity.code", min=1),
    ]),
    "engraft-body-measurement": obs_profile("Engraft body measurement", "Weight, height or BSA at HSCT.", code_vs="engraft-body-measurement-code", value_types=["Quantity"], category="vital-signs", extra=[
        dict(path="Observation.value[x]", min=1),
    ]),
    "engraft-transplant-observation": obs_profile("Engraft transplant fact", "Age at HSCT and HLA match of a transplant.", code_vs="engraft-transplant-observation-code", value_types=["Quantity", "Ratio"], extra=[
        dict(path="Observation.value[x]", min=1),
        ref("Observation.partOf", "Procedure", min_=1),
    ]),
    "engraft-response": obs_profile("Engraft disease response", "Disease status at a follow-up time point.", code_pattern=cc(cs_url("engraft-observation"), "disease-response"), value_types=["CodeableConcept"], extra=[
        dict(path="Observation.value[x]", min=1, binding=("required", vs_url("engraft-response"))),
    ]),
    "engraft-disease-event": obs_profile("Engraft disease event", "A relapse, progression or pseudo-relapse, dated, as the registry classified it.", code_vs="engraft-disease-event-code", value_types=["boolean"], extra=[
        dict(path="Observation.effective[x]", min=1, type=[{"code": "dateTime"}]),
    ]),
    "engraft-vital-status": obs_profile("Engraft vital status", "Vital status at last contact, or the main cause of death.", code_vs="engraft-vital-code", value_types=["CodeableConcept"], extra=[
        dict(path="Observation.value[x]", min=1),
        dict(path="Observation.effective[x]", min=1, type=[{"code": "dateTime"}]),
    ]),
    "engraft-provenance": ("Engraft record provenance", "Provenance", "Names every resource made from one registry record version.", [
        dict(path="Provenance.target", min=1),
        dict(path="Provenance.activity", min=1),
        dict(path="Provenance.entity", min=1, max="1"),
        dict(path="Provenance.entity.role", fixedCode="source"),
        dict(path="Provenance.entity.what.identifier", min=1),
    ]),
}

VALUE_SETS = {
    # name -> (title, [(system, [codes] or None for all)])
    "engraft-consent-state": ("Consent states Engraft sends", [("http://hl7.org/fhir/consent-state-codes", ["active", "inactive"])]),
    "engraft-gvhd-grade": ("GvHD grades", [(cs_url("engraft-grade"), ["I", "II", "III", "IV", "mild", "moderate", "severe", "limited", "extensive"])]),
    "engraft-supplemental-infusion": ("Supplemental infusion kinds", [(cs_url("engraft-procedure"), ["boost", "top-up", "dli"])]),
    "engraft-cell-dose-code": ("Cell dose codes", [(LOINC, ["78002-3", "78003-1"]), (cs_url("engraft-observation"), ["cd34-collected"])]),
    "engraft-engraftment-code": ("Engraftment codes", [(cs_url("engraft-observation"), ["neutrophil-engraftment", "platelet-engraftment"])]),
    "engraft-score-code": ("Disease score codes", [(LOINC, ["19872-1", "98130-8", "75847-4", "75845-8"]), (cs_url("engraft-observation"), ["edss", "mrss", "lvef", "sledai-2k", "das28-esr", "das28-crp", "crohn-cdai", "ses-cd", "incat", "bvas", "mri-new-t2", "mri-gd", "insulin-dose", "hct-ci"])]),
    "engraft-performance-code": ("Performance status codes", [(LOINC, ["89243-0", "89247-1"]), (cs_url("engraft-observation"), ["lansky"])]),
    "engraft-lab-code": ("Laboratory codes", [(LOINC, ["751-8", "777-3", "6690-2", "731-0", "718-7", "2160-0", "1975-2", "29604-6", "74838-4", "19911-7"]), (cs_url("engraft-observation"), ["lab-ebv-dna", "lab-c-peptide", "lab-hba1c"])]),
    "engraft-body-measurement-code": ("Body measurement codes", [(LOINC, ["29463-7", "8302-2"]), (cs_url("engraft-observation"), ["body-surface-area"])]),
    "engraft-transplant-observation-code": ("Transplant fact codes", [(cs_url("engraft-observation"), ["age-at-hsct", "hla-match"])]),
    "engraft-disease-event-code": ("Disease event codes", [(cs_url("engraft-observation"), ["relapse", "progression", "pseudo-relapse", "secondary-autoimmunity-flare"])]),
    "engraft-vital-code": ("Vital status codes", [(cs_url("engraft-observation"), ["vital-status", "cause-of-death"])]),
}
# One "all codes" ValueSet per CodeSystem.
for _name in CODE_SYSTEMS:
    VALUE_SETS.setdefault(_name, (CODE_SYSTEMS[_name][0] + " (all codes)", [(cs_url(_name), None)]))


def concept_json(con, props_decl):
    code, display, definition, props, children = con
    out = {"code": code, "display": display, "definition": definition}
    plist = []
    for pname, ptype in props_decl:
        if pname in props:
            v = props[pname]
            key = {"decimal": "valueDecimal", "integer": "valueInteger", "boolean": "valueBoolean", "code": "valueCode", "string": "valueString"}[ptype]
            plist.append({"code": pname, key: v})
    if plist:
        out["property"] = plist
    if children:
        out["concept"] = [concept_json(ch, props_decl) for ch in children]
    return out


def count(concepts):
    return sum(1 + count(ch[4]) for ch in concepts)


def code_system(name, title, description, props, concepts):
    return {
        "resourceType": "CodeSystem", "id": name, "url": cs_url(name), "version": VERSION,
        "name": "".join(p.capitalize() for p in name.split("-")), "title": title, "status": "active",
        "experimental": False, "date": DATE, "publisher": "Engraft", "description": description,
        "caseSensitive": True, "hierarchyMeaning": "is-a", "content": "complete", "count": count(concepts),
        **({"property": [{"code": p, "type": t} for p, t in props]} if props else {}),
        "concept": [concept_json(con, props) for con in concepts],
    }


def value_set(name, title, includes):
    inc = []
    for system, codes in includes:
        entry = {"system": system}
        if codes is not None:
            entry["concept"] = [{"code": k} for k in codes]
        inc.append(entry)
    return {
        "resourceType": "ValueSet", "id": name, "url": vs_url(name), "version": VERSION,
        "name": "".join(p.capitalize() for p in name.split("-")), "title": title, "status": "active",
        "experimental": False, "date": DATE, "publisher": "Engraft", "compose": {"include": inc},
    }


def concept_map(name, title, source_cs, groups):
    out_groups = []
    for target_system, target_version, rows in groups:
        by_source = {}
        for source, target, display, depends in rows:
            t = {"code": target, "equivalence": "equivalent" if depends is None else "relatedto"}
            if display:
                t["display"] = display
            if depends:
                t["dependsOn"] = [{"property": depends[0], "value": depends[1]}]
            by_source.setdefault(source, []).append(t)
        g = {"source": cs_url(source_cs), "target": target_system}
        if target_version:
            g["targetVersion"] = target_version
        g["element"] = [{"code": s, "target": ts} for s, ts in by_source.items()]
        out_groups.append(g)
    return {
        "resourceType": "ConceptMap", "id": name, "url": f"{BASE}/ConceptMap/{name}", "version": VERSION,
        "name": "".join(p.capitalize() for p in name.split("-")), "title": title, "status": "active",
        "experimental": False, "date": DATE, "publisher": "Engraft",
        "sourceUri": vs_url(source_cs), "group": out_groups,
    }


def element(rule, type_name):
    # A rule names its element by path, path + sliceName, or (inside a slice) by id.
    eid = rule.get("id") or rule["path"]
    path = re.sub(r":[^.]+", "", eid)
    if rule.get("sliceName"):
        eid = f"{eid}:{rule['sliceName']}"
    e = {"id": eid, "path": path}
    if rule.get("slicing"):
        e["slicing"] = rule["slicing"] if isinstance(rule["slicing"], dict) else {"discriminator": [{"type": "value", "path": "url"}], "ordered": False, "rules": "open"}
        return e
    if rule.get("sliceName"):
        e["sliceName"] = rule["sliceName"]
    for k in ("min", "max"):
        if k in rule:
            e[k] = rule[k]
    if "type" in rule:
        e["type"] = rule["type"]
    if "fixedCode" in rule:
        e["fixedCode"] = rule["fixedCode"]
    if "fixedUri" in rule:
        e["fixedUri"] = rule["fixedUri"]
    if "patternCodeableConcept" in rule:
        e["patternCodeableConcept"] = rule["patternCodeableConcept"]
    if "binding" in rule:
        e["binding"] = {"strength": rule["binding"][0], "valueSet": rule["binding"][1]}
    if "constraint" in rule:
        e["constraint"] = [{"key": k, "severity": "error", "human": h, "expression": x, "source": CURRENT_SD[0]} for k, h, x in rule["constraint"]]
    e["mustSupport"] = True
    return e


def merge_elements(rules, type_name):
    out = []
    index = {}
    for r in rules:
        e = element(r, type_name)
        if e["id"] in index:
            out[index[e["id"]]].update(e)
        else:
            index[e["id"]] = len(out)
            out.append(e)
    return out


CURRENT_SD = [None]


def profile(name, title, base_type, description, rules):
    CURRENT_SD[0] = sd_url(name)
    return {
        "resourceType": "StructureDefinition", "id": name, "url": sd_url(name), "version": VERSION,
        "name": "".join(p.capitalize() for p in name.split("-")), "title": title, "status": "active",
        "experimental": False, "date": DATE, "publisher": "Engraft", "description": description,
        "fhirVersion": "4.0.1", "kind": "resource", "abstract": False, "type": base_type,
        "baseDefinition": f"http://hl7.org/fhir/StructureDefinition/{base_type}", "derivation": "constraint",
        "differential": {"element": [{"id": base_type, "path": base_type}] + merge_elements(rules, base_type)},
    }


def extension(name, title, contexts, value_type, description, vs):
    value_el = {"id": "Extension.value[x]", "path": "Extension.value[x]", "min": 1, "type": [{"code": value_type}]}
    if vs:
        value_el["binding"] = {"strength": "required", "valueSet": vs_url(vs)}
    if value_type == "Reference":
        target = {"hsct-product": ["BiologicallyDerivedProduct"], "relative-to-transplant": ["Procedure"]}[name]
        value_el["type"] = [{"code": "Reference", "targetProfile": [f"http://hl7.org/fhir/StructureDefinition/{t}" for t in target]}]
    return {
        "resourceType": "StructureDefinition", "id": name, "url": sd_url(name), "version": VERSION,
        "name": "".join(p.capitalize() for p in name.split("-")), "title": title, "status": "active",
        "experimental": False, "date": DATE, "publisher": "Engraft", "description": description,
        "fhirVersion": "4.0.1", "kind": "complex-type", "abstract": False,
        "context": [{"type": "element", "expression": ctx} for ctx in contexts],
        "type": "Extension", "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Extension",
        "derivation": "constraint",
        "differential": {"element": [
            {"id": "Extension", "path": "Extension", "short": title, "definition": description, "max": "1"},
            {"id": "Extension.extension", "path": "Extension.extension", "max": "0"},
            {"id": "Extension.url", "path": "Extension.url", "fixedUri": sd_url(name)},
            value_el,
        ]},
    }


def write(resource):
    path = os.path.join(OUT, f"{resource['resourceType']}-{resource['id']}.json")
    with open(path, "w") as f:
        json.dump(resource, f, indent=2, ensure_ascii=False)
        f.write("\n")
    return os.path.basename(path)


def main():
    os.makedirs(OUT, exist_ok=True)
    for fn in os.listdir(OUT):
        if fn.endswith(".json") and fn.split("-")[0] in ("CodeSystem", "ValueSet", "ConceptMap", "StructureDefinition"):
            os.remove(os.path.join(OUT, fn))
    CODE_SYSTEMS["engraft-issue"] = CODE_SYSTEMS["engraft-issue"][:3] + ([c(code, code, definition) for code, definition in ISSUE_CODES],)
    files = []
    for name, (title, desc, props, concepts) in CODE_SYSTEMS.items():
        files.append(write(code_system(name, title, desc, props, concepts)))
    for name, (title, includes) in VALUE_SETS.items():
        files.append(write(value_set(name, title, includes)))
    for name, (title, source_cs, groups) in CONCEPT_MAPS.items():
        files.append(write(concept_map(name, title, source_cs, groups)))
    for name, (title, contexts, vt, desc, vs) in EXTENSIONS.items():
        files.append(write(extension(name, title, contexts, vt, desc, vs)))
    for name, (title, base_type, desc, rules) in PROFILES.items():
        files.append(write(profile(name, title, base_type, desc, rules)))
    pkg = {
        "name": "engraft.fhir", "version": VERSION, "canonical": BASE, "fhirVersions": ["4.0.1"],
        "type": "IG", "title": "Engraft SCT registry profiles", "license": "Apache-2.0",
        "description": "Profiles, extensions and terminology for autoimmune HSCT registry data in FHIR R4.",
        "author": "Engraft", "dependencies": {"hl7.fhir.r4.core": "4.0.1"},
    }
    with open(os.path.join(OUT, "package.json"), "w") as f:
        json.dump(pkg, f, indent=2)
        f.write("\n")
    print(f"wrote {len(files)} resources to profiles/", file=sys.stderr)


if __name__ == "__main__":
    main()

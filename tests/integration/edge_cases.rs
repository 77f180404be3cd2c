//! One test per edge case of `../shared/domain-sct.md` §5: the deliberate behaviour for each
//! bad or awkward input real registry exports contain. Each test starts from the base fixture
//! record and changes only what the case is about.

use serde_json::{json, Value};

use super::helpers::*;

fn err_codes(v: Value) -> Vec<(String, String)> {
    codes(&check(v).expect_err("the record must be rejected"))
}

fn warn_codes(v: Value) -> Vec<(String, String)> {
    codes(&check(v).expect("the record must be accepted"))
}

fn pair(code: &str, ptr: &str) -> (String, String) {
    (code.to_string(), ptr.to_string())
}

/// 1. Partial dates stay partial; estimated dates are flagged, never invented.
#[test]
fn e01_partial_dates_are_kept_and_estimates_flagged() {
    let mut r = base();
    r["patient"]["birthDate"] = json!("1986");
    r["diagnoses"][0]["diagnosisDate"] = json!("2011-02");
    r["estimatedDates"] = json!(["/diagnoses/0/diagnosisDate"]);
    let b = bundle(r);
    let patient = &entries(&b)[0];
    assert_eq!(patient["birthDate"], "1986");
    let cond = with_profile(&b, "engraft-autoimmune-condition")[0];
    assert_eq!(cond["extension"][0]["valueDateTime"], "2011-02");
    assert_eq!(
        cond["extension"][0]["_valueDateTime"]["extension"][0]["url"],
        "https://engraft.dev/fhir/StructureDefinition/date-estimated"
    );
    // No age can be computed from a birth year alone: none is sent.
    assert!(with_code(&b, "age-at-hsct").is_empty());
}

/// 2. Unknown / not performed / not applicable become dataAbsentReason; a MED-A blank is an error.
#[test]
fn e02_absent_values_and_mandatory_blanks() {
    let mut r = base();
    r["followUps"][0]["scores"] = json!([{"scale": "edss", "absentReason": "not-performed"}]);
    let b = bundle(r);
    let edss = with_code(&b, "edss")
        .into_iter()
        .find(|o| {
            o["identifier"][0]["value"]
                .as_str()
                .unwrap()
                .contains("D100")
        })
        .unwrap();
    assert_eq!(
        edss["dataAbsentReason"]["coding"][0]["code"],
        "not-performed"
    );
    assert!(edss.get("valueQuantity").is_none());
    let mut r = base();
    r["diagnoses"][0]["disease"] = json!("");
    assert_eq!(
        err_codes(r),
        vec![pair("missing-mandatory", "/diagnoses/0/disease")]
    );
}

/// 3. Platelets that never fell below 20: not applicable, not "no recovery".
#[test]
fn e03_platelet_recovery_not_applicable() {
    let mut r = base();
    r["transplants"][0]["engraftment"]["platelet"] = json!({"status": "not-applicable"});
    let b = bundle(r);
    let plt = with_code(&b, "platelet-engraftment")[0];
    assert_eq!(
        plt["dataAbsentReason"]["coding"][0]["code"],
        "not-applicable"
    );
    assert!(plt.get("valueDateTime").is_none());
}

/// 4. ANC recovery counted before the nadir: on or before day 0 is an error, within days a warning.
#[test]
fn e04_recovery_before_the_nadir() {
    let mut r = base();
    r["transplants"][0]["engraftment"]["neutrophil"]["date"] = json!("2018-12-09");
    assert_eq!(
        err_codes(r),
        vec![pair(
            "date-order",
            "/transplants/0/engraftment/neutrophil/date"
        )]
    );
    let mut r = base();
    r["transplants"][0]["engraftment"]["neutrophil"]["date"] = json!("2018-12-11");
    assert_eq!(
        warn_codes(r),
        vec![pair(
            "engraftment-early",
            "/transplants/0/engraftment/neutrophil/date"
        )]
    );
}

/// 5. Death before engraftment is "not evaluable"; graft failure needs day +30 (+42 cord).
#[test]
fn e05_death_before_engraftment() {
    let mut r = base();
    r["transplants"][0]["engraftment"] =
        json!({"neutrophil": {"status": "not-evaluable"}, "platelet": {"status": "not-evaluable"}});
    r["transplants"][0]["complications"] = json!([]);
    r["followUps"] = json!([]);
    r["vitalStatus"] = json!({"status": "dead", "lastContactDate": "2018-12-16", "deathDate": "2018-12-16", "causeOfDeath": "infection"});
    let b = bundle(r.clone());
    assert_eq!(
        with_code(&b, "neutrophil-engraftment")[0]["valueCodeableConcept"]["coding"][0]["code"],
        "not-evaluable"
    );
    r["transplants"][0]["engraftment"]["neutrophil"]["status"] = json!("failure");
    assert_eq!(
        err_codes(r),
        vec![pair(
            "engraftment-failure-early",
            "/transplants/0/engraftment/neutrophil/status"
        )]
    );
}

/// 6. Several transplants: one Procedure each; follow-ups count days from their own day 0.
#[test]
fn e06_several_transplants_have_their_own_day_0() {
    let b = bundle(read_json(
        &fixtures("records").join("ms-aggressive-second-transplant.json"),
    ));
    let hscts = with_profile(&b, "engraft-hsct-procedure");
    assert_eq!(hscts.len(), 2);
    let second_full_url = b["entry"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| {
            e["resource"]["identifier"][0]["value"]
                .as_str()
                .unwrap()
                .ends_with("/tx2/hsct")
        })
        .unwrap()["fullUrl"]
        .clone();
    let d100_tx2 = with_code(&b, "edss")
        .into_iter()
        .find(|o| {
            o["identifier"][0]["value"]
                .as_str()
                .unwrap()
                .contains("tx2/fu/D100")
        })
        .unwrap();
    assert_eq!(
        d100_tx2["extension"][0]["valueReference"]["reference"],
        second_full_url
    );
    let day = d100_tx2["component"][0]["valueQuantity"]["value"]
        .as_f64()
        .unwrap();
    assert_eq!(
        day, 100.0,
        "2021-06-15 is day +100 of the second HSCT (2021-03-07)"
    );
    // A follow-up without a transplant number counts from the latest HSCT before it.
    let m6 = with_code(&b, "edss")
        .into_iter()
        .find(|o| {
            o["identifier"][0]["value"]
                .as_str()
                .unwrap()
                .contains("tx2/fu/M6")
        })
        .unwrap();
    assert_eq!(
        m6["extension"][0]["valueReference"]["reference"],
        second_full_url
    );
}

/// 7. A boost before or after day 0 is not a new HSCT.
#[test]
fn e07_boosts_and_dli_are_not_new_transplants() {
    let mut r = base();
    r["transplants"][0]["supplementalInfusions"] =
        json!([{"date": "2018-12-30", "kind": "boost"}, {"date": "2019-02-01", "kind": "dli"}]);
    let b = bundle(r);
    assert_eq!(with_profile(&b, "engraft-hsct-procedure").len(), 1);
    let sups = with_profile(&b, "engraft-supplemental-infusion");
    assert_eq!(sups.len(), 2);
    assert_eq!(sups[0]["code"]["coding"][0]["code"], "boost");
}

/// 8. Several apheresis days from one mobilisation are one product.
#[test]
fn e08_aphereses_of_one_mobilisation_are_one_product() {
    let b = bundle(base());
    assert_eq!(with_profile(&b, "engraft-apheresis-procedure").len(), 2);
    let products = with_profile(&b, "engraft-stem-cell-product");
    assert_eq!(products.len(), 1);
    assert_eq!(
        products[0]["collection"]["collectedPeriod"],
        json!({"start": "2018-10-26", "end": "2018-10-27"})
    );
}

/// 9. Multi-day infusion: performedPeriod, day 0 = the first day.
#[test]
fn e09_multi_day_infusion() {
    let mut r = base();
    r["transplants"][0]["infusionEndDate"] = json!("2018-12-10");
    let b = bundle(r);
    let hsct = with_profile(&b, "engraft-hsct-procedure")[0];
    assert_eq!(
        hsct["performedPeriod"],
        json!({"start": "2018-12-09", "end": "2018-12-10"})
    );
    assert_eq!(
        with_code(&b, "neutrophil-engraftment")[0]["component"][0]["valueQuantity"]["value"],
        10
    );
}

/// 10. Donor items on an autologous record: warning, ignored, reported as not mapped.
#[test]
fn e10_donor_items_on_autologous_records() {
    let mut r = base();
    r["transplants"][0]["donor"] = json!({"hlaMatch": "10/10"});
    assert_eq!(
        warn_codes(r.clone()),
        vec![pair("donor-on-autologous", "/transplants/0/donor")]
    );
    let b = bundle(r);
    assert!(with_code(&b, "hla-match").is_empty());
    // An allogeneic record needs its donor type: the record schema makes it mandatory.
    let mut r = base();
    r["transplants"][0]
        .as_object_mut()
        .unwrap()
        .remove("donorType");
    let issues = engraft::record::record_from_value(r).unwrap_err();
    assert_eq!(
        codes(&issues),
        vec![pair("missing-mandatory", "/transplants/0")]
    );
}

/// 11. GvHD after an autologous HSCT: warning, sent as reported.
#[test]
fn e11_gvhd_after_autologous_hsct() {
    let mut r = base();
    r["transplants"][0]["complications"] =
        json!([{"kind": "acute-gvhd", "onsetDate": "2018-12-28", "grade": "I"}]);
    assert_eq!(
        warn_codes(r.clone()),
        vec![pair(
            "gvhd-autologous",
            "/transplants/0/complications/0/kind"
        )]
    );
    assert_eq!(with_profile(&bundle(r), "engraft-gvhd").len(), 1);
}

/// 12. Death before last contact, or alive with a death date: rejected for review.
#[test]
fn e12_contradictory_vital_status() {
    let mut r = base();
    r["vitalStatus"] = json!({"status": "dead", "lastContactDate": "2023-01-05", "deathDate": "2022-12-20", "causeOfDeath": "infection"});
    assert_eq!(
        err_codes(r),
        vec![pair(
            "vital-status-conflict",
            "/vitalStatus/lastContactDate"
        )]
    );
    let mut r = base();
    r["vitalStatus"]["deathDate"] = json!("2022-12-01");
    assert_eq!(
        err_codes(r),
        vec![pair("vital-status-conflict", "/vitalStatus/deathDate")]
    );
}

/// 13. EDSS 10 means death due to MS: cross-checked both ways.
#[test]
fn e13_edss_10_and_death() {
    let mut r = base();
    r["followUps"][5]["scores"][0]["value"] = json!(10);
    assert_eq!(
        err_codes(r),
        vec![pair("edss-death-conflict", "/followUps/5/scores/0/value")]
    );
    let mut r = base();
    r["vitalStatus"] = json!({"status": "dead", "lastContactDate": "2022-12-01", "deathDate": "2022-12-01", "causeOfDeath": "primary-disease"});
    assert_eq!(
        warn_codes(r.clone()),
        vec![pair("edss-death-conflict", "/vitalStatus/causeOfDeath")]
    );
    r["followUps"][5]["scores"][0]["value"] = json!(10);
    assert_eq!(warn_codes(r), vec![]);
}

/// 14. Withdrawn consent: never exported.
#[test]
fn e14_withdrawn_consent_is_not_exported() {
    let mut r = base();
    r["consent"] =
        json!({"status": "withdrawn", "date": "2018-09-03", "withdrawnDate": "2021-01-10"});
    assert_eq!(
        err_codes(r),
        vec![pair("consent-not-given", "/consent/status")]
    );
}

/// 15. The same person elsewhere: linked by identifier, never merged.
#[test]
fn e15_duplicates_are_linked_not_merged() {
    let mut r = base();
    r["patient"]["linkedIdentifiers"] =
        json!([{"system": "https://engraft.dev/fhir/sid/upn/EBMT/CIC-311", "value": "UPN-9005"}]);
    let b = bundle(r);
    let link = &entries(&b)[0]["link"][0];
    assert_eq!(link["type"], "seealso");
    assert_eq!(link["other"]["identifier"]["value"], "UPN-9005");
    assert_eq!(with_profile(&b, "engraft-patient").len(), 1);
}

/// 16. CD34 in the wrong unit or magnitude: rejected, never guessed.
#[test]
fn e16_cd34_dose_units() {
    let mut r = base();
    r["transplants"][0]["cd34Dose"] = json!({"value": 350, "unit": "10*6/kg"});
    assert_eq!(
        err_codes(r),
        vec![pair("implausible-value", "/transplants/0/cd34Dose/value")]
    );
    let mut r = base();
    r["transplants"][0]["cd34Dose"] = json!({"value": 5, "unit": "10*8/kg"});
    assert_eq!(
        err_codes(r),
        vec![pair("unit-invalid", "/transplants/0/cd34Dose/unit")]
    );
}

/// 17. ANC 500 /uL and 0.5 x10^9/L are the same; 500 x10^9/L is not plausible.
#[test]
fn e17_anc_normalised_to_giga_per_litre() {
    let mut r = base();
    r["followUps"][0]["labs"] = json!([{"test": "anc", "value": 500, "unit": "/mm3"}]);
    let b = bundle(r);
    let anc = with_code(&b, "751-8")[0];
    assert_eq!(anc["valueQuantity"]["value"], 0.5);
    assert_eq!(anc["valueQuantity"]["code"], "10*9/L");
    let mut r = base();
    r["followUps"][0]["labs"] = json!([{"test": "anc", "value": 500, "unit": "10*9/L"}]);
    assert_eq!(
        err_codes(r),
        vec![pair("implausible-value", "/followUps/0/labs/0/value")]
    );
}

/// 18. DLCO in EU units is converted; mm[Hg], not mmHg.
#[test]
fn e18_dlco_units() {
    let mut r = base();
    r["followUps"][0]["labs"] = json!([{"test": "dlco", "value": 8, "unit": "mmol/min/kPa"}]);
    let b = bundle(r);
    let dlco = with_code(&b, "19911-7")[0];
    assert_eq!(dlco["valueQuantity"]["code"], "mL/min/mm[Hg]");
    assert_eq!(dlco["valueQuantity"]["value"], 23.896);
}

/// 19. Dose units need their basis; ATG needs its product.
#[test]
fn e19_dose_basis_and_atg_product() {
    let mut r = base();
    r["transplants"][0]["conditioning"]["drugs"][4]["drug"] = json!("atg");
    r["transplants"][0]["conditioning"]["drugs"][0]["dose"]["unit"] = json!("mg/day");
    assert_eq!(
        err_codes(r),
        vec![
            pair("atg-product", "/transplants/0/conditioning/drugs/4/drug"),
            pair(
                "unit-invalid",
                "/transplants/0/conditioning/drugs/0/dose/unit"
            )
        ]
    );
    let b = bundle(base());
    let atg = with_profile(&b, "engraft-medication-administration")
        .into_iter()
        .find(|m| m["medicationCodeableConcept"]["coding"][0]["code"] == "atg-rabbit")
        .unwrap();
    assert_eq!(atg["dosage"]["dose"]["code"], "mg/kg");
    assert_eq!(
        atg["medicationCodeableConcept"]["coding"][1]["code"],
        "225741"
    );
}

/// 20. Weight in lb and height in inches are converted; BSA only when both are present.
#[test]
fn e20_body_size_units_and_bsa() {
    let mut r = base();
    r["baseline"]["weight"] = json!({"value": 154, "unit": "lb"});
    r["baseline"]["height"] = json!({"value": 66, "unit": "in"});
    let b = bundle(r.clone());
    assert_eq!(
        with_code(&b, "29463-7")[0]["valueQuantity"]["value"],
        69.8532
    );
    assert_eq!(with_code(&b, "8302-2")[0]["valueQuantity"]["value"], 167.64);
    let bsa = with_code(&b, "body-surface-area")[0];
    assert_eq!(bsa["valueQuantity"]["value"], 1.8);
    assert!(bsa["method"]["text"]
        .as_str()
        .unwrap()
        .contains("Mosteller"));
    r["baseline"].as_object_mut().unwrap().remove("height");
    assert!(with_code(&bundle(r), "body-surface-area").is_empty());
}

/// 21. Decimal commas and thousands separators (EU CSV).
#[test]
fn e21_decimal_commas() {
    use engraft::record::csv::parse_number;
    assert_eq!(parse_number("2,5", true), Some(2.5));
    assert_eq!(parse_number("72.400", true), Some(72400.0));
    assert_eq!(parse_number("2,5", false), None);
    let b = read_json(&fixtures("bundles").join("eu-registry-export.EU-0002.json"));
    let weight = with_code(&b, "29463-7")[0];
    assert_eq!(
        weight["valueQuantity"]["value"], 72.4,
        "72.400 g with a thousands separator is 72.4 kg"
    );
}

/// 22. Invalid scale values are rejected.
#[test]
fn e22_invalid_scale_values() {
    let mut r = base();
    r["baseline"]["scores"] = json!([{"scale": "edss", "value": 0.5}, {"scale": "edss", "value": 3.25}, {"scale": "edss", "value": 10.5}]);
    r["baseline"]["performance"] = json!({"scale": "karnofsky", "value": 85});
    assert_eq!(
        err_codes(r),
        vec![
            pair("scale-range", "/baseline/scores/2/value"),
            pair("scale-step", "/baseline/performance/value"),
            pair("scale-step", "/baseline/scores/0/value"),
            pair("scale-step", "/baseline/scores/1/value")
        ]
    );
}

/// 23. DAS28 needs its variant; CDAI is mapped by disease.
#[test]
fn e23_score_variants_and_cdai_by_disease() {
    let mut r = base();
    r["baseline"]["scores"] =
        json!([{"scale": "das28", "value": 4}, {"scale": "cdai", "value": 20}]);
    assert_eq!(
        err_codes(r),
        vec![
            pair("scale-variant", "/baseline/scores/0/scale"),
            pair("scale-variant", "/baseline/scores/1/scale")
        ]
    );
    let ra = read_json(&fixtures("bundles").join("ra-auto-cy-atg.json"));
    assert_eq!(
        with_code(&ra, "75847-4").len(),
        2,
        "RA CDAI goes to LOINC 75847-4"
    );
    let crohn = read_json(&fixtures("bundles").join("crohns-auto-cy-atg.json"));
    assert!(
        with_code(&crohn, "75847-4").is_empty(),
        "Crohn's CDAI is never the RA LOINC"
    );
    assert!(with_code(&crohn, "crohn-cdai").len() >= 7);
}

/// 24. Code drift: ICD-10-CM G35 split (FY2026) and WHO ICD-10 codes sent as what they are.
#[test]
fn e24_code_versions_and_systems() {
    let mut r = base();
    r["diagnoses"][0]["codes"] = json!([{"system": "icd-10-cm", "version": "2026", "code": "G35"}, {"system": "icd-10", "code": "M34.81"}]);
    assert_eq!(
        err_codes(r),
        vec![
            pair("code-system-mismatch", "/diagnoses/0/codes/1/code"),
            pair("code-version", "/diagnoses/0/codes/0/code")
        ]
    );
    let mut r = base();
    r["diagnoses"][0]["codes"] = json!([{"system": "icd-10", "version": "2019", "code": "G35"}]);
    let b = bundle(r);
    let coding = &with_profile(&b, "engraft-autoimmune-condition")[0]["code"]["coding"];
    assert!(coding
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["system"] == "http://hl7.org/fhir/sid/icd-10"
            && c["code"] == "G35"
            && c["version"] == "2019"));
    assert!(coding
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["system"] == "http://hl7.org/fhir/sid/icd-10-cm"
            && c["code"] == "G35.A"
            && c["version"] == "2026"));
}

/// 25. SNOMED CT extension concepts are kept next to an International code.
#[test]
fn e25_snomed_extension_concepts() {
    let mut r = base();
    r["transplants"][0]["complications"][0]["codes"] =
        json!([{"system": "snomed", "code": "16566981000119101"}]);
    assert_eq!(
        warn_codes(r.clone()),
        vec![pair(
            "snomed-extension",
            "/transplants/0/complications/0/codes/0/code"
        )]
    );
    let b = bundle(r);
    let hsct = with_profile(&b, "engraft-hsct-procedure")[0];
    let codes: Vec<_> = hsct["code"]["coding"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["code"].as_str().unwrap())
        .collect();
    assert_eq!(
        codes,
        ["234336002", "425983008"],
        "the HSCT carries International Edition codes only"
    );
}

/// 26. A revised diagnosis keeps its history; the HSCT names the diagnosis valid at day 0.
#[test]
fn e26_revised_diagnosis() {
    let b = read_json(&fixtures("bundles").join("nmosd-revised-from-ms.json"));
    let conditions = with_profile(&b, "engraft-autoimmune-condition");
    assert_eq!(
        conditions[0]["verificationStatus"]["coding"][0]["code"],
        "refuted"
    );
    let nmosd_url = b["entry"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| {
            e["resource"]["identifier"][0]["value"]
                .as_str()
                .is_some_and(|v| v.contains("diagnosis/nmosd"))
        })
        .unwrap()["fullUrl"]
        .clone();
    assert_eq!(
        with_profile(&b, "engraft-hsct-procedure")[0]["reasonReference"][0]["reference"],
        nmosd_url
    );
    let evolved = read_json(&fixtures("bundles").join("cis-evolved-to-rrms.json"));
    let cis = with_profile(&evolved, "engraft-autoimmune-condition")[0];
    assert_eq!(cis["clinicalStatus"]["coding"][0]["code"], "inactive");
    assert_eq!(cis["abatementDateTime"], "2011-02-14");
}

/// 27. Pseudo-relapse keeps the registry's classification.
#[test]
fn e27_pseudo_relapse_is_not_recoded() {
    let b = read_json(&fixtures("bundles").join("ms-pseudo-relapse-secondary-autoimmunity.json"));
    assert_eq!(with_code(&b, "pseudo-relapse").len(), 1);
    assert!(with_code(&b, "relapse").is_empty());
}

/// 28. Free-text regimen names map to regimen codes; the text is kept.
#[test]
fn e28_free_text_regimens() {
    for (text, code) in [
        ("BEAM/ATG", "beam-atg"),
        ("BEAM-hATG", "beam-atg"),
        ("CY200+rATG", "cy-atg"),
        ("Cy/ATG/Ritux", "cy-atg-rituximab"),
    ] {
        let mut r = base();
        r["transplants"][0]["conditioning"]["regimen"] = json!(text);
        let b = bundle(r);
        let cond = with_profile(&b, "engraft-conditioning-procedure")[0];
        assert_eq!(cond["code"]["coding"][1]["code"], code, "{text}");
        assert_eq!(cond["code"]["text"], text);
    }
    let mut r = base();
    r["transplants"][0]["conditioning"]["regimen"] = json!("house special");
    assert_eq!(
        warn_codes(r.clone()),
        vec![pair(
            "regimen-unmapped",
            "/transplants/0/conditioning/regimen"
        )]
    );
    assert_eq!(
        with_profile(&bundle(r), "engraft-conditioning-procedure")[0]["code"]["coding"][1]["code"],
        "other"
    );
    // The drugs are still sent one by one.
    assert_eq!(
        with_profile(&bundle(base()), "engraft-medication-administration").len(),
        7
    );
}

/// 29. Lansky is not Karnofsky.
#[test]
fn e29_lansky_is_not_karnofsky() {
    let b = read_json(&fixtures("bundles").join("paediatric-crohns-lansky.json"));
    let perf = with_profile(&b, "engraft-performance-status")[0];
    assert_eq!(perf["code"]["coding"][0]["code"], "lansky");
    assert!(with_code(&b, "89243-0").is_empty());
    let mut r = base();
    r["baseline"]["performance"]["scale"] = json!("lansky");
    assert_eq!(
        warn_codes(r),
        vec![pair("performance-age", "/baseline/performance/scale")]
    );
}

/// 30. Out-of-window visits keep their real date; one assessment per window keeps the time point.
#[test]
fn e30_time_point_windows() {
    let mut r = base();
    r["followUps"][0]["date"] = json!("2019-04-18");
    assert_eq!(
        warn_codes(r),
        vec![pair("time-point-window", "/followUps/0/date")]
    );
    let b = read_json(&fixtures("bundles").join("ms-duplicate-window.json"));
    let types: Vec<_> = with_profile(&b, "engraft-followup-encounter")
        .iter()
        .map(|e| {
            (
                e["type"][0]["coding"][0]["code"]
                    .as_str()
                    .unwrap()
                    .to_string(),
                e["period"]["start"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        types[0],
        ("unscheduled".to_string(), "2019-03-10".to_string())
    );
    assert_eq!(
        types[1],
        ("D100".to_string(), "2019-03-19".to_string()),
        "day 100 is the closer one"
    );
}

/// 31. A time without a zone is dropped (date only); with a zone it is kept.
#[test]
fn e31_times_and_zones() {
    let mut r = base();
    r["transplants"][0]["infusionDate"] = json!("2018-12-09T10:30:00+01:00");
    r["transplants"][0]["engraftment"]["neutrophil"]["date"] = json!("2018-12-19T08:00");
    assert_eq!(
        warn_codes(r.clone()),
        vec![pair(
            "time-without-zone",
            "/transplants/0/engraftment/neutrophil/date"
        )]
    );
    let b = bundle(r);
    assert_eq!(
        with_profile(&b, "engraft-hsct-procedure")[0]["performedDateTime"],
        "2018-12-09T10:30:00+01:00"
    );
    assert_eq!(
        with_code(&b, "neutrophil-engraftment")[0]["valueDateTime"],
        "2018-12-19"
    );
}

/// 32. Age at HSCT only when the birth date allows it; otherwise the registry's stated age.
#[test]
fn e32_age_at_hsct() {
    let b = bundle(base());
    assert_eq!(
        with_code(&b, "age-at-hsct")[0]["valueQuantity"]["value"],
        32
    );
    let mut r = base();
    r["patient"]["birthDate"] = json!("1986");
    r["transplants"][0]["statedAgeYears"] = json!(32);
    assert_eq!(
        with_code(&bundle(r), "age-at-hsct")[0]["valueQuantity"]["value"],
        32
    );
    let mut r = base();
    r["patient"]["birthDate"] = json!("1986-03");
    // Born in March 1986, transplanted 2018-12-09: 32 whatever the day.
    assert_eq!(
        with_code(&bundle(r), "age-at-hsct")[0]["valueQuantity"]["value"],
        32
    );
}

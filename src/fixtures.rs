//! Synthetic registry records: realistic, varied, deterministic for a (seed, index) pair so
//! that any number of them can be generated in a stream. Every generated record passes the
//! checks; the test suite holds that.

use chrono::{Duration, NaiveDate};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::record::model::*;
use crate::record::RecordDate;

struct DiseaseProfile {
    disease: &'static str,
    subtypes: &'static [&'static str],
    weight: u32,
    regimens: &'static [(&'static str, &'static str)],
    prior: &'static [&'static str],
    scale: (&'static str, f64, f64, f64),
    responses: &'static [&'static str],
    icd10cm: &'static str,
}

const PROFILES: &[DiseaseProfile] = &[
    DiseaseProfile {
        disease: "multiple-sclerosis",
        subtypes: &["rrms", "rrms", "spms", "aggressive-ms", "ppms"],
        weight: 45,
        regimens: &[
            ("BEAM/ATG", "beam-atg"),
            ("Cy/ATG", "cy-atg"),
            ("CY200+rATG", "cy-atg"),
        ],
        prior: &[
            "interferon-beta",
            "glatiramer",
            "natalizumab",
            "fingolimod",
            "ocrelizumab",
            "alemtuzumab",
            "dimethyl-fumarate",
        ],
        scale: ("edss", 1.0, 7.0, 0.5),
        responses: &["neda", "sd", "eda"],
        icd10cm: "G35.A",
    },
    DiseaseProfile {
        disease: "systemic-sclerosis",
        subtypes: &[
            "diffuse-cutaneous-ssc",
            "diffuse-cutaneous-ssc",
            "limited-cutaneous-ssc",
        ],
        weight: 20,
        regimens: &[
            ("Cy/ATG", "cy-atg"),
            ("Cy/ATG/Ritux", "cy-atg-rituximab"),
            ("TBI-Cy-ATG", "tbi-cy-atg"),
        ],
        prior: &[
            "methotrexate",
            "mycophenolate",
            "rituximab",
            "cyclophosphamide",
        ],
        scale: ("mrss", 4.0, 40.0, 1.0),
        responses: &["pr", "cr", "sd", "pd"],
        icd10cm: "M34.0",
    },
    DiseaseProfile {
        disease: "crohns-disease",
        subtypes: &[],
        weight: 8,
        regimens: &[("Cy/ATG", "cy-atg"), ("Flu-Cy", "flu-cy")],
        prior: &[
            "infliximab",
            "adalimumab",
            "vedolizumab",
            "ustekinumab",
            "azathioprine",
        ],
        scale: ("crohn-cdai", 80.0, 420.0, 1.0),
        responses: &["cr", "pr", "relapse"],
        icd10cm: "K50.90",
    },
    DiseaseProfile {
        disease: "cidp",
        subtypes: &[],
        weight: 6,
        regimens: &[("Cy/ATG", "cy-atg"), ("BEAM/ATG", "beam-atg")],
        prior: &["ivig", "prednisolone", "rituximab"],
        scale: ("incat", 1.0, 8.0, 1.0),
        responses: &["cr", "pr", "sd"],
        icd10cm: "G61.81",
    },
    DiseaseProfile {
        disease: "nmosd",
        subtypes: &[],
        weight: 5,
        regimens: &[("Cy/ATG/Ritux", "cy-atg-rituximab")],
        prior: &["rituximab", "azathioprine", "eculizumab", "inebilizumab"],
        scale: ("edss", 2.0, 7.0, 0.5),
        responses: &["neda", "sd", "eda"],
        icd10cm: "G36.0",
    },
    DiseaseProfile {
        disease: "sle",
        subtypes: &["lupus-nephritis"],
        weight: 5,
        regimens: &[("Cy/ATG", "cy-atg"), ("Flu-Cy-ATG", "flu-cy-atg")],
        prior: &[
            "hydroxychloroquine",
            "mycophenolate",
            "belimumab",
            "rituximab",
        ],
        scale: ("sledai-2k", 2.0, 30.0, 1.0),
        responses: &["cr", "pr", "low-disease-activity"],
        icd10cm: "M32.9",
    },
    DiseaseProfile {
        disease: "rheumatoid-arthritis",
        subtypes: &[],
        weight: 3,
        regimens: &[("Cy/ATG", "cy-atg")],
        prior: &[
            "methotrexate",
            "etanercept",
            "adalimumab",
            "tocilizumab",
            "abatacept",
        ],
        scale: ("das28-esr", 1.5, 7.5, 0.01),
        responses: &["cr", "low-disease-activity", "relapse"],
        icd10cm: "M06.9",
    },
    DiseaseProfile {
        disease: "type-1-diabetes",
        subtypes: &[],
        weight: 3,
        regimens: &[("Cy/ATG", "cy-atg")],
        prior: &["insulin"],
        scale: ("insulin-dose", 0.0, 1.2, 0.01),
        responses: &["cr", "pr", "relapse"],
        icd10cm: "E10.9",
    },
    DiseaseProfile {
        disease: "vasculitis",
        subtypes: &["gpa", "mpa", "anca-vasculitis"],
        weight: 5,
        regimens: &[("Cy/ATG", "cy-atg")],
        prior: &["rituximab", "cyclophosphamide", "methotrexate"],
        scale: ("bvas", 0.0, 25.0, 1.0),
        responses: &["cr", "pr", "relapse"],
        icd10cm: "M31.30",
    },
];

fn d(date: NaiveDate) -> RecordDate {
    RecordDate::from_naive(date)
}

fn snap(v: f64, lo: f64, step: f64) -> f64 {
    let k = ((v - lo) / step).round();
    let out = lo + k * step;
    (out * 100.0).round() / 100.0
}

/// The record `index` of the stream `seed`.
pub fn generate(seed: u64, index: u64) -> Record {
    let mut rng = ChaCha8Rng::seed_from_u64(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ index);
    let total: u32 = PROFILES.iter().map(|p| p.weight).sum();
    let mut pick = rng.gen_range(0..total);
    let prof = PROFILES
        .iter()
        .find(|p| {
            if pick < p.weight {
                true
            } else {
                pick -= p.weight;
                false
            }
        })
        .expect("weights cover the range");
    let centre = format!("C{:03}", rng.gen_range(1..40));
    let paediatric = prof.disease != "multiple-sclerosis" && rng.gen_bool(0.04);
    let birth = NaiveDate::from_ymd_opt(
        if paediatric {
            rng.gen_range(2006..2012)
        } else {
            rng.gen_range(1960..1998)
        },
        rng.gen_range(1..=12),
        rng.gen_range(1..=28),
    )
    .expect("valid");
    let diagnosis =
        birth + Duration::days(rng.gen_range(if paediatric { 1500..2500 } else { 6600..12000 }));
    let day0 = (diagnosis + Duration::days(rng.gen_range(700..3500)))
        .min(NaiveDate::from_ymd_opt(2021, 6, 30).expect("valid"));
    let day0 = day0.max(diagnosis + Duration::days(300));
    let mob_start = day0 - Duration::days(rng.gen_range(40..75));
    let cond_start = day0 - Duration::days(6);
    let (regimen_text, regimen) = *prof.regimens.choose(&mut rng).expect("non-empty");
    let allo = rng.gen_bool(0.05);
    let dies = rng.gen_bool(0.03);
    let sex = if rng.gen_bool(0.65) {
        Sex::Female
    } else {
        Sex::Male
    };
    let weight = if paediatric {
        rng.gen_range(25.0..55.0f64)
    } else {
        rng.gen_range(50.0..100.0f64)
    };
    let height = if paediatric {
        rng.gen_range(125.0..165.0f64)
    } else {
        rng.gen_range(150.0..195.0f64)
    };
    let weight = (weight * 10.0).round() / 10.0;
    let height = height.round();

    let mut prior_therapies = Vec::new();
    let mut t = diagnosis + Duration::days(rng.gen_range(30..200));
    let n_prior = rng.gen_range(1..=prof.prior.len().min(4));
    for agent in prof.prior.choose_multiple(&mut rng, n_prior) {
        let stop = t + Duration::days(rng.gen_range(120..900));
        if stop >= mob_start {
            break;
        }
        prior_therapies.push(PriorTherapy {
            agent: agent.to_string(),
            start_date: Some(RecordDate::parse(&t.format("%Y-%m").to_string()).expect("valid")),
            stop_date: Some(d(stop)),
            stop_reason: Some(
                ["failure", "intolerance", "safety", "failure"]
                    .choose(&mut rng)
                    .expect("non-empty")
                    .to_string(),
            ),
        });
        t = stop + Duration::days(rng.gen_range(20..90));
    }

    let (scale, lo, hi, step) = prof.scale;
    let baseline_score = snap(rng.gen_range(lo..=hi), lo, step);
    let score_at = |rng: &mut ChaCha8Rng, base: f64| -> f64 {
        let drift = rng.gen_range(-0.35..0.15) * (hi - lo);
        let v = snap((base + drift).clamp(lo, hi), lo, step);
        if scale == "edss" && v > 0.0 && v < 1.0 {
            1.0
        } else {
            v
        }
    };

    let mut drugs = Vec::new();
    let cy = |start: NaiveDate, days: i64| DrugGiven {
        drug: "cyclophosphamide".into(),
        dose: Measure {
            value: 50.0,
            unit: "mg/kg".into(),
        },
        total_dose: Some(Measure {
            value: 50.0 * days as f64,
            unit: "mg/kg".into(),
        }),
        start_date: d(start),
        end_date: Some(d(start + Duration::days(days - 1))),
    };
    let atg = |start: NaiveDate| DrugGiven {
        drug: "atg-rabbit".into(),
        dose: Measure {
            value: 1.5,
            unit: "mg/kg".into(),
        },
        total_dose: Some(Measure {
            value: 6.0,
            unit: "mg/kg".into(),
        }),
        start_date: d(start),
        end_date: Some(d(start + Duration::days(3))),
    };
    match regimen {
        "beam-atg" => {
            drugs.push(DrugGiven {
                drug: "carmustine".into(),
                dose: Measure {
                    value: 300.0,
                    unit: "mg/m2".into(),
                },
                total_dose: None,
                start_date: d(cond_start),
                end_date: None,
            });
            drugs.push(DrugGiven {
                drug: "etoposide".into(),
                dose: Measure {
                    value: 200.0,
                    unit: "mg/m2".into(),
                },
                total_dose: None,
                start_date: d(cond_start + Duration::days(1)),
                end_date: Some(d(cond_start + Duration::days(4))),
            });
            drugs.push(DrugGiven {
                drug: "cytarabine".into(),
                dose: Measure {
                    value: 200.0,
                    unit: "mg/m2".into(),
                },
                total_dose: None,
                start_date: d(cond_start + Duration::days(1)),
                end_date: Some(d(cond_start + Duration::days(4))),
            });
            drugs.push(DrugGiven {
                drug: "melphalan".into(),
                dose: Measure {
                    value: 140.0,
                    unit: "mg/m2".into(),
                },
                total_dose: None,
                start_date: d(cond_start + Duration::days(5)),
                end_date: None,
            });
            drugs.push(atg(day0 + Duration::days(1)));
        }
        "flu-cy" | "flu-cy-atg" => {
            drugs.push(DrugGiven {
                drug: "fludarabine".into(),
                dose: Measure {
                    value: 30.0,
                    unit: "mg/m2".into(),
                },
                total_dose: None,
                start_date: d(cond_start),
                end_date: Some(d(cond_start + Duration::days(4))),
            });
            drugs.push(cy(cond_start + Duration::days(1), 2));
            if regimen == "flu-cy-atg" {
                drugs.push(atg(cond_start + Duration::days(2)));
            }
        }
        _ => {
            drugs.push(cy(cond_start, 4));
            drugs.push(atg(cond_start + Duration::days(1)));
            if regimen == "cy-atg-rituximab" {
                drugs.push(DrugGiven {
                    drug: "rituximab".into(),
                    dose: Measure {
                        value: 500.0,
                        unit: "mg".into(),
                    },
                    total_dose: None,
                    start_date: d(day0 + Duration::days(1)),
                    end_date: None,
                });
            }
        }
    }
    let tbi = (regimen == "tbi-cy-atg").then(|| Tbi {
        dose_gy: 2.0,
        fractions: 1,
        start_date: d(day0 - Duration::days(1)),
        end_date: None,
    });

    let aph1 = mob_start + Duration::days(rng.gen_range(9..12));
    let n_aph = rng.gen_range(1..=3);
    let aphereses: Vec<Apheresis> = (0..n_aph)
        .map(|k| Apheresis {
            date: d(aph1 + Duration::days(k)),
            cd34_collected: Some(Measure {
                value: (rng.gen_range(1.0..6.0f64) * 10.0).round() / 10.0,
                unit: "10*6/kg".into(),
            }),
        })
        .collect();
    let source = if allo && rng.gen_bool(0.3) {
        StemCellSource::BoneMarrow
    } else {
        StemCellSource::PeripheralBlood
    };

    let death = dies.then(|| day0 + Duration::days(rng.gen_range(20..900)));
    let n_fu = if rng.gen_bool(0.8) {
        6
    } else {
        rng.gen_range(2..=8)
    };
    let tps: [(&str, i64); 8] = [
        ("D100", 100),
        ("M6", 182),
        ("Y1", 365),
        ("Y2", 730),
        ("Y3", 1095),
        ("Y4", 1460),
        ("Y5", 1825),
        ("Y6", 2190),
    ];
    let mut follow_ups = Vec::new();
    let mut last = day0 + Duration::days(30);
    let mut current = baseline_score;
    for (tp, target) in tps.iter().take(n_fu) {
        let date = day0 + Duration::days(target + rng.gen_range(-10..10));
        if death.is_some_and(|x| date >= x) {
            break;
        }
        current = score_at(&mut rng, current);
        last = date;
        follow_ups.push(FollowUp {
            transplant: None,
            time_point: tp.to_string(),
            date: d(date),
            scores: vec![Score {
                scale: scale.into(),
                value: Some(current),
                absent_reason: None,
                date: None,
            }],
            labs: if *tp == "D100" {
                vec![Lab {
                    test: "anc".into(),
                    value: (rng.gen_range(1.5..5.0f64) * 10.0).round() / 10.0,
                    unit: "10*9/L".into(),
                    date: None,
                }]
            } else {
                Vec::new()
            },
            response: Some(
                prof.responses
                    .choose(&mut rng)
                    .expect("non-empty")
                    .to_string(),
            ),
            events: Vec::new(),
            therapy_restarts: Vec::new(),
        });
    }
    let neutrophil_date = day0 + Duration::days(rng.gen_range(8..13));
    let died_early = death.is_some_and(|x| x <= neutrophil_date + Duration::days(10));
    let engraftment = if died_early {
        Engraftment {
            neutrophil: Recovery {
                status: RecoveryStatus::NotEvaluable,
                date: None,
            },
            platelet: Recovery {
                status: RecoveryStatus::NotEvaluable,
                date: None,
            },
        }
    } else if rng.gen_bool(0.15) {
        Engraftment {
            neutrophil: Recovery {
                status: RecoveryStatus::Engrafted,
                date: Some(d(neutrophil_date)),
            },
            platelet: Recovery {
                status: RecoveryStatus::NotApplicable,
                date: None,
            },
        }
    } else {
        Engraftment {
            neutrophil: Recovery {
                status: RecoveryStatus::Engrafted,
                date: Some(d(neutrophil_date)),
            },
            platelet: Recovery {
                status: RecoveryStatus::Engrafted,
                date: Some(d(neutrophil_date + Duration::days(rng.gen_range(0..5)))),
            },
        }
    };
    let mut complications = vec![Complication {
        kind: "febrile-neutropenia".into(),
        onset_date: d(day0 + Duration::days(rng.gen_range(3..8))),
        resolved_date: None,
        grade: Some("3".into()),
        organism: None,
        organs: Vec::new(),
        codes: Vec::new(),
    }];
    if rng.gen_bool(0.2) {
        complications.push(Complication {
            kind: "cmv-reactivation".into(),
            onset_date: d(day0 + Duration::days(rng.gen_range(20..60))),
            resolved_date: None,
            grade: None,
            organism: None,
            organs: Vec::new(),
            codes: Vec::new(),
        });
    }
    if allo && rng.gen_bool(0.4) {
        complications.push(Complication {
            kind: "acute-gvhd".into(),
            onset_date: d(day0 + Duration::days(rng.gen_range(15..28))),
            resolved_date: None,
            grade: Some(["I", "II"].choose(&mut rng).expect("non-empty").to_string()),
            organism: None,
            organs: vec!["skin".into()],
            codes: Vec::new(),
        });
    }
    let last_contact = death.unwrap_or(last);
    // Nothing happens after death.
    complications.retain(|c| death.is_none_or(|x| c.onset_date.earliest() <= x));
    Record {
        record_id: format!("GEN-{seed}-{index:07}"),
        version: 1,
        registry: "EBMT".into(),
        centre: Centre {
            code: centre,
            name: None,
        },
        patient: PatientInfo {
            upn: format!("U{seed}-{index:07}"),
            mrns: Vec::new(),
            crid: None,
            name: None,
            sex,
            birth_date: d(birth),
            linked_identifiers: Vec::new(),
        },
        consent: ConsentInfo {
            status: ConsentStatus::Granted,
            date: Some(d(mob_start - Duration::days(30))),
            withdrawn_date: None,
        },
        diagnoses: vec![Diagnosis {
            disease: prof.disease.into(),
            subtype: prof.subtypes.choose(&mut rng).map(|s| s.to_string()),
            onset_date: Some(
                RecordDate::parse(
                    &(diagnosis - Duration::days(rng.gen_range(60..700)))
                        .format("%Y-%m")
                        .to_string(),
                )
                .expect("valid"),
            ),
            diagnosis_date: d(diagnosis),
            codes: vec![SourceCode {
                system: "icd-10-cm".into(),
                version: Some("2026".into()),
                code: prof.icd10cm.into(),
            }],
            revision: None,
        }],
        prior_therapies,
        baseline: Some(Baseline {
            date: d(mob_start - Duration::days(rng.gen_range(5..20))),
            performance: Some(Performance {
                scale: if paediatric {
                    PerformanceScale::Lansky
                } else {
                    PerformanceScale::Karnofsky
                },
                value: rng.gen_range(6..=10) * 10,
            }),
            hct_ci: Some(rng.gen_range(0..4)),
            weight: Some(Measure {
                value: weight,
                unit: "kg".into(),
            }),
            height: Some(Measure {
                value: height,
                unit: "cm".into(),
            }),
            scores: vec![Score {
                scale: scale.into(),
                value: Some(baseline_score),
                absent_reason: None,
                date: None,
            }],
            labs: Vec::new(),
        }),
        transplants: vec![Transplant {
            number: 1,
            donor_type: if allo {
                DonorType::AllogeneicRelated
            } else {
                DonorType::Autologous
            },
            stem_cell_source: source,
            donor: allo.then(|| Donor {
                hla_match: Some("10/10".into()),
                relationship: Some("sibling".into()),
                sex: None,
                cmv_igg: None,
                abo: None,
            }),
            mobilisation: (!allo).then(|| Mobilisation {
                start_date: d(mob_start),
                regimen: "cy-gcsf".into(),
                drugs: vec![
                    DrugGiven {
                        drug: "cyclophosphamide".into(),
                        dose: Measure {
                            value: 2.0,
                            unit: "g/m2".into(),
                        },
                        total_dose: None,
                        start_date: d(mob_start),
                        end_date: None,
                    },
                    DrugGiven {
                        drug: "filgrastim".into(),
                        dose: Measure {
                            value: 5.0,
                            unit: "ug/kg".into(),
                        },
                        total_dose: None,
                        start_date: d(mob_start + Duration::days(5)),
                        end_date: Some(d(aph1 + Duration::days(n_aph - 1))),
                    },
                ],
                aphereses,
                poor_mobiliser: None,
            }),
            graft_manipulation: Some(
                if rng.gen_bool(0.2) {
                    "cd34-selection"
                } else {
                    "none"
                }
                .into(),
            ),
            cryopreserved: Some(!allo),
            cd34_dose: Some(Measure {
                value: (rng.gen_range(2.0..9.0f64) * 100.0).round() / 100.0,
                unit: "10*6/kg".into(),
            }),
            tnc_dose: None,
            conditioning: Some(Conditioning {
                regimen: regimen_text.into(),
                intensity: Some(
                    if tbi.is_some() {
                        "high"
                    } else {
                        "intermediate"
                    }
                    .into(),
                ),
                start_date: d(cond_start),
                end_date: Some(d(day0 - Duration::days(1))),
                drugs,
                tbi,
            }),
            infusion_date: d(day0),
            infusion_end_date: None,
            supplemental_infusions: Vec::new(),
            stated_age_years: None,
            engraftment: Some(engraftment),
            complications,
        }],
        follow_ups,
        vital_status: VitalStatus {
            status: if dies { Vital::Dead } else { Vital::Alive },
            last_contact_date: d(last_contact),
            death_date: death.map(d),
            cause_of_death: dies.then(|| {
                ["infection", "organ-toxicity", "other"]
                    .choose(&mut rng)
                    .expect("non-empty")
                    .to_string()
            }),
        },
        estimated_dates: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::terminology::Terminology;

    #[test]
    fn generation_is_deterministic() {
        assert_eq!(generate(7, 3), generate(7, 3));
        assert_ne!(generate(7, 3), generate(7, 4));
    }

    #[test]
    fn every_generated_record_passes_the_checks() {
        let t = Terminology::bundled();
        for i in 0..3000 {
            let r = generate(42, i);
            if let Err(issues) = crate::record::check(r.clone(), t) {
                panic!(
                    "record {i} failed: {:#?}",
                    issues.iter().map(|x| x.to_string()).collect::<Vec<_>>()
                );
            }
        }
    }
}

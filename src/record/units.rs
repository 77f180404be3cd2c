//! Units: the spellings registries use, normalised to UCUM, with conversions and plausible
//! ranges (domain edge cases 16-20). Conversions are explicit: a value is converted only when
//! its unit says what it is; a missing or unknown unit is an error, never a guess.

/// What a measured value is, which decides its allowed units and plausible range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quantity<'a> {
    Weight,
    Height,
    Cd34Dose,
    TncDose,
    Cd34Collected,
    /// A laboratory test, by its `engraft-lab` code.
    Lab(&'a str),
    /// A drug dose (per administration day or total).
    Dose,
    TbiDose,
}

/// A value in its emitted UCUM unit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Normalised {
    pub value: f64,
    pub unit: &'static str,
    /// True when the value was converted from another unit.
    pub converted: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnitProblem {
    /// The unit is not one this item may have.
    NotAllowed { allowed: &'static str },
    /// The value is outside the plausible range for the unit.
    Implausible { range: &'static str },
}

/// Spelling variants seen in exports, mapped to UCUM.
fn canonical_spelling(unit: &str) -> String {
    let u = unit.trim().replace(['µ', 'μ'], "u").replace('²', "2");
    match u.as_str() {
        "lb" | "lbs" => "[lb_av]".into(),
        "in" | "inch" | "inches" => "[in_i]".into(),
        "x10^6/kg" | "10^6/kg" | "x10E6/kg" | "10E6/kg" => "10*6/kg".into(),
        "x10^8/kg" | "10^8/kg" | "x10E8/kg" | "10E8/kg" => "10*8/kg".into(),
        "x10^7/kg" | "10^7/kg" | "x10E7/kg" | "10E7/kg" => "10*7/kg".into(),
        "x10^9/L" | "10^9/L" | "G/L" | "x10E9/L" => "10*9/L".into(),
        "x10^3/uL" | "10^3/uL" | "K/uL" => "10*3/uL".into(),
        "/mm3" | "cells/uL" | "cells/mm3" | "/mm^3" => "/uL".into(),
        "mcg/kg" => "ug/kg".into(),
        "mcg" => "ug".into(),
        "mL/min/mmHg" | "ml/min/mmHg" => "mL/min/mm[Hg]".into(),
        "mmol/min/kPa" => "mmol/(min.kPa)".into(),
        "IU/mL" => "[IU]/mL".into(),
        "copies/mL" => "{copies}/mL".into(),
        _ => u,
    }
}

/// Normalises `value unit` for `what`.
pub fn normalise(what: Quantity<'_>, value: f64, unit: &str) -> Result<Normalised, UnitProblem> {
    let unit = canonical_spelling(unit);
    let u = unit.as_str();
    let conv = |value: f64, unit: &'static str, factor: f64| Normalised {
        value: round(value * factor),
        unit,
        converted: factor != 1.0,
    };
    let (n, range, lo, hi, allowed): (Option<Normalised>, &'static str, f64, f64, &'static str) =
        match what {
            Quantity::Weight => (
                match u {
                    "kg" => Some(conv(value, "kg", 1.0)),
                    "g" => Some(conv(value, "kg", 0.001)),
                    "[lb_av]" => Some(conv(value, "kg", 0.453_592_37)),
                    _ => None,
                },
                "2-300 kg",
                2.0,
                300.0,
                "kg, g, [lb_av]",
            ),
            Quantity::Height => (
                match u {
                    "cm" => Some(conv(value, "cm", 1.0)),
                    "m" => Some(conv(value, "cm", 100.0)),
                    "[in_i]" => Some(conv(value, "cm", 2.54)),
                    _ => None,
                },
                "40-250 cm",
                40.0,
                250.0,
                "cm, m, [in_i]",
            ),
            Quantity::Cd34Dose => (
                (u == "10*6/kg").then(|| conv(value, "10*6/kg", 1.0)),
                "0.1-50 x10^6/kg",
                0.1,
                50.0,
                "10*6/kg",
            ),
            Quantity::Cd34Collected => (
                (u == "10*6/kg").then(|| conv(value, "10*6/kg", 1.0)),
                "0.01-50 x10^6/kg",
                0.01,
                50.0,
                "10*6/kg",
            ),
            Quantity::TncDose => match u {
                "10*8/kg" => (
                    Some(conv(value, "10*8/kg", 1.0)),
                    "0.05-30 x10^8/kg",
                    0.05,
                    30.0,
                    "",
                ),
                "10*7/kg" => (
                    Some(conv(value, "10*7/kg", 1.0)),
                    "0.5-300 x10^7/kg",
                    0.5,
                    300.0,
                    "",
                ),
                _ => (None, "", 0.0, 0.0, "10*8/kg, 10*7/kg (cord)"),
            },
            Quantity::Dose => (
                match u {
                    "mg/kg" => Some(conv(value, "mg/kg", 1.0)),
                    "mg/m2" => Some(conv(value, "mg/m2", 1.0)),
                    "g/m2" => Some(conv(value, "mg/m2", 1000.0)),
                    "mg" => Some(conv(value, "mg", 1.0)),
                    "g" => Some(conv(value, "mg", 1000.0)),
                    "ug/kg" => Some(conv(value, "ug/kg", 1.0)),
                    "ug" => Some(conv(value, "ug", 1.0)),
                    "[iU]/kg" => Some(conv(value, "[iU]/kg", 1.0)),
                    _ => None,
                },
                "greater than 0",
                f64::MIN_POSITIVE,
                f64::MAX,
                "mg/kg, mg/m2, g/m2, mg, g, ug/kg, ug, [iU]/kg",
            ),
            Quantity::TbiDose => (
                (u == "Gy").then(|| conv(value, "Gy", 1.0)),
                "0-16 Gy",
                f64::MIN_POSITIVE,
                16.0,
                "Gy",
            ),
            Quantity::Lab(test) => return normalise_lab(test, value, u),
        };
    let n = n.ok_or(UnitProblem::NotAllowed { allowed })?;
    if !(lo..=hi).contains(&n.value) || !n.value.is_finite() {
        return Err(UnitProblem::Implausible { range });
    }
    Ok(n)
}

fn normalise_lab(test: &str, value: f64, u: &str) -> Result<Normalised, UnitProblem> {
    let conv = |unit: &'static str, factor: f64| Normalised {
        value: round(value * factor),
        unit,
        converted: factor != 1.0,
    };
    // (normalised value, plausible range text, low, high, allowed units)
    let (n, range, lo, hi, allowed) = match test {
        // 10*3/uL equals 10*9/L; /uL (= /mm3) is a thousand times larger (edge case 17).
        "anc" | "wbc" | "lymphocytes" => (
            match u {
                "10*9/L" | "10*3/uL" => Some(conv("10*9/L", 1.0)),
                "/uL" => Some(conv("10*9/L", 0.001)),
                _ => None,
            },
            "0-200 x10^9/L",
            0.0,
            200.0,
            "10*9/L, 10*3/uL, /uL",
        ),
        "platelets" => (
            match u {
                "10*9/L" | "10*3/uL" => Some(conv("10*9/L", 1.0)),
                "/uL" => Some(conv("10*9/L", 0.001)),
                _ => None,
            },
            "0-3000 x10^9/L",
            0.0,
            3000.0,
            "10*9/L, 10*3/uL, /uL",
        ),
        "hemoglobin" => (
            match u {
                "g/dL" => Some(conv("g/dL", 1.0)),
                "g/L" => Some(conv("g/dL", 0.1)),
                _ => None,
            },
            "1-25 g/dL",
            1.0,
            25.0,
            "g/dL, g/L",
        ),
        "creatinine" => (
            match u {
                "mg/dL" => Some(conv("mg/dL", 1.0)),
                "umol/L" => Some(conv("mg/dL", 1.0 / 88.42)),
                _ => None,
            },
            "0.05-30 mg/dL",
            0.05,
            30.0,
            "mg/dL, umol/L",
        ),
        "bilirubin" => (
            match u {
                "mg/dL" => Some(conv("mg/dL", 1.0)),
                "umol/L" => Some(conv("mg/dL", 1.0 / 17.1)),
                _ => None,
            },
            "0-60 mg/dL",
            0.0,
            60.0,
            "mg/dL, umol/L",
        ),
        "cmv-dna" | "ebv-dna" => (
            match u {
                "[IU]/mL" => Some(conv("[IU]/mL", 1.0)),
                "{copies}/mL" => Some(conv("{copies}/mL", 1.0)),
                _ => None,
            },
            "0-1e10 per mL",
            0.0,
            1e10,
            "[IU]/mL, {copies}/mL",
        ),
        "c-peptide" => (
            match u {
                "ng/mL" => Some(conv("ng/mL", 1.0)),
                "nmol/L" => Some(conv("ng/mL", 3.02)),
                _ => None,
            },
            "0-20 ng/mL",
            0.0,
            20.0,
            "ng/mL, nmol/L",
        ),
        "hba1c" => (
            match u {
                "%" => Some(conv("%", 1.0)),
                "mmol/mol" => Some(Normalised {
                    value: round(value / 10.929 + 2.15),
                    unit: "%",
                    converted: true,
                }),
                _ => None,
            },
            "3-20 %",
            3.0,
            20.0,
            "%, mmol/mol",
        ),
        "cd34-blood" => (
            match u {
                "/uL" => Some(conv("/uL", 1.0)),
                "10*6/L" => Some(conv("/uL", 1.0)),
                _ => None,
            },
            "0-5000 /uL",
            0.0,
            5000.0,
            "/uL, 10*6/L",
        ),
        // 1 mmol/(min.kPa) = 2.987 mL/min/mm[Hg] (edge case 18).
        "dlco" => (
            match u {
                "mL/min/mm[Hg]" => Some(conv("mL/min/mm[Hg]", 1.0)),
                "mmol/(min.kPa)" => Some(conv("mL/min/mm[Hg]", 2.987)),
                _ => None,
            },
            "1-60 mL/min/mm[Hg]",
            1.0,
            60.0,
            "mL/min/mm[Hg], mmol/(min.kPa)",
        ),
        _ => (None, "", 0.0, 0.0, "a known laboratory unit"),
    };
    let n = n.ok_or(UnitProblem::NotAllowed { allowed })?;
    if !(lo..=hi).contains(&n.value) || !n.value.is_finite() {
        return Err(UnitProblem::Implausible { range });
    }
    Ok(n)
}

/// Rounds converted values to 6 significant decimals, so output is stable and free of
/// floating point noise (0.1 + 0.2).
pub fn round(v: f64) -> f64 {
    if v == 0.0 || !v.is_finite() {
        return v;
    }
    let digits = 5 - v.abs().log10().floor() as i32;
    let f = 10f64.powi(digits.clamp(0, 12));
    (v * f).round() / f
}

/// Body surface area by Mosteller, in m2.
pub fn bsa_mosteller(weight_kg: f64, height_cm: f64) -> f64 {
    let v = (weight_kg * height_cm / 3600.0).sqrt();
    (v * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anc_per_microlitre_is_normalised_to_giga_per_litre() {
        let n = normalise(Quantity::Lab("anc"), 500.0, "/mm3").unwrap();
        assert_eq!((n.value, n.unit, n.converted), (0.5, "10*9/L", true));
        let same = normalise(Quantity::Lab("anc"), 0.5, "10*3/uL").unwrap();
        assert_eq!((same.value, same.unit), (0.5, "10*9/L"));
    }

    #[test]
    fn anc_of_500_in_giga_per_litre_is_implausible() {
        assert!(matches!(
            normalise(Quantity::Lab("anc"), 500.0, "10*9/L"),
            Err(UnitProblem::Implausible { .. })
        ));
    }

    #[test]
    fn cd34_dose_needs_its_unit_and_a_plausible_value() {
        assert!(normalise(Quantity::Cd34Dose, 5.2, "x10^6/kg").is_ok());
        assert!(matches!(
            normalise(Quantity::Cd34Dose, 350.0, "10*6/kg"),
            Err(UnitProblem::Implausible { .. })
        ));
        assert!(matches!(
            normalise(Quantity::Cd34Dose, 3.5, "10*8/kg"),
            Err(UnitProblem::NotAllowed { .. })
        ));
    }

    #[test]
    fn pounds_and_inches_become_kilograms_and_centimetres() {
        assert_eq!(
            normalise(Quantity::Weight, 154.0, "lb").unwrap().value,
            69.8532
        );
        assert_eq!(
            normalise(Quantity::Height, 70.0, "in").unwrap().value,
            177.8
        );
    }

    #[test]
    fn eu_dlco_is_converted_to_ucum_mm_hg() {
        let n = normalise(Quantity::Lab("dlco"), 8.0, "mmol/min/kPa").unwrap();
        assert_eq!((n.value, n.unit), (23.896, "mL/min/mm[Hg]"));
        assert!(normalise(Quantity::Lab("dlco"), 25.0, "mmHg").is_err());
    }

    #[test]
    fn mosteller_bsa() {
        assert_eq!(bsa_mosteller(70.0, 175.0), 1.84);
    }
}

//! Small builders for fhirbolt R4 values, so the per-resource mappers read as the FHIR they
//! produce.

use fhirbolt::model::r4::types::{
    Canonical, Code, CodeableConcept, Coding, Date, DateTime, Decimal, Extension, ExtensionValue,
    Identifier, Meta, Period, Quantity, Reference, String as FhirString, Uri,
};

use crate::record::RecordDate;
use crate::terminology::{self, Target, Terminology, UCUM};

pub fn s(v: impl Into<String>) -> FhirString {
    FhirString::from(v.into())
}

pub fn code(v: impl Into<String>) -> Code {
    Code::from(v.into())
}

pub fn uri(v: impl Into<String>) -> Uri {
    Uri::from(v.into())
}

pub fn coding(system: &str, code_: &str, display: Option<&str>) -> Coding {
    Coding {
        system: Some(uri(system)),
        code: Some(code(code_)),
        display: display.map(s),
        ..Default::default()
    }
}

/// A coding of one of Engraft's CodeSystems, with its display from the terminology.
pub fn local(term: &Terminology, cs_id: &str, code_: &str) -> Coding {
    let system = term.url_of(cs_id).expect("Engraft CodeSystems are bundled");
    let display = term.concept(cs_id, code_).map(|c| c.display.as_str());
    coding(system, code_, display)
}

pub fn from_target(t: &Target) -> Coding {
    Coding {
        system: Some(uri(&t.system)),
        version: t.version.as_deref().map(s),
        code: Some(code(&t.code)),
        display: t.display.as_deref().map(s),
        ..Default::default()
    }
}

pub fn cc(codings: Vec<Coding>) -> CodeableConcept {
    CodeableConcept {
        coding: codings,
        ..Default::default()
    }
}

pub fn cc_text(codings: Vec<Coding>, text: &str) -> CodeableConcept {
    CodeableConcept {
        coding: codings,
        text: Some(s(text)),
        ..Default::default()
    }
}

pub fn reference(full_url: &str) -> Reference {
    Reference {
        reference: Some(s(full_url)),
        ..Default::default()
    }
}

pub fn identifier(system: &str, value: &str) -> Identifier {
    Identifier {
        system: Some(uri(system)),
        value: Some(s(value)),
        ..Default::default()
    }
}

pub fn meta(profile: &str) -> Option<Box<Meta>> {
    Some(Box::new(Meta {
        profile: vec![Canonical::from(ext_url(profile))],
        ..Default::default()
    }))
}

/// A decimal as FHIR JSON writes it: no exponent, no trailing zeros beyond what is needed.
pub fn decimal(v: f64) -> Decimal {
    let mut text = format!("{v}");
    if text.contains('e') || text.contains('E') {
        text = format!("{v:.6}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string();
    }
    Decimal::from(text)
}

/// A UCUM quantity; `display_unit` is the human form, `ucum` the code.
pub fn ucum(value: f64, ucum_code: &str) -> Quantity {
    Quantity {
        value: Some(decimal(value)),
        unit: Some(s(ucum_code)),
        system: Some(uri(UCUM)),
        code: Some(code(ucum_code)),
        ..Default::default()
    }
}

pub fn extension(url: &str, value: ExtensionValue) -> Extension {
    Extension {
        url: url.to_string(),
        value: Some(value),
        ..Default::default()
    }
}

/// URL of one of Engraft's StructureDefinitions (profiles and extensions).
pub fn ext_url(name: &str) -> String {
    [terminology::BASE, "/StructureDefinition/", name].concat()
}

fn estimated_flag() -> Extension {
    extension(
        &ext_url("date-estimated"),
        ExtensionValue::Boolean(true.into()),
    )
}

/// A FHIR dateTime from a registry date; flagged when the source estimated it.
pub fn date_time(d: &RecordDate, estimated: bool) -> DateTime {
    DateTime {
        value: Some(d.fhir_date_time()),
        extension: if estimated {
            vec![estimated_flag()]
        } else {
            Vec::new()
        },
        ..Default::default()
    }
}

/// A FHIR date from a registry date; flagged when the source estimated it.
pub fn date(d: &RecordDate, estimated: bool) -> Date {
    Date {
        value: Some(d.fhir_date()),
        extension: if estimated {
            vec![estimated_flag()]
        } else {
            Vec::new()
        },
        ..Default::default()
    }
}

pub fn period(start: DateTime, end: Option<DateTime>) -> Period {
    Period {
        start: Some(start),
        end,
        ..Default::default()
    }
}

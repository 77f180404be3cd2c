//! Problems found in a registry record: a stable code, a location, a sentence without patient
//! values. The codes are the concepts of CodeSystem `engraft-issue` in `profiles/`.

use std::fmt;

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
    Information,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Information => "information",
        }
    }
}

macro_rules! issue_codes {
    ($($variant:ident => $code:literal, $fhir:literal;)*) => {
        /// Stable problem codes (CodeSystem `engraft-issue`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum IssueCode { $($variant,)* }

        impl IssueCode {
            pub const ALL: &'static [IssueCode] = &[$(IssueCode::$variant,)*];
            /// The code as published in `engraft-issue`.
            pub fn as_str(self) -> &'static str {
                match self { $(IssueCode::$variant => $code,)* }
            }
            /// The FHIR `OperationOutcome.issue.code` (IssueType) this problem reports as.
            pub fn fhir_issue_type(self) -> &'static str {
                match self { $(IssueCode::$variant => $fhir,)* }
            }
        }
    };
}

issue_codes! {
    Structure => "structure", "structure";
    JsonSyntax => "json-syntax", "structure";
    CsvSyntax => "csv-syntax", "structure";
    CsvColumn => "csv-column", "structure";
    NumberFormat => "number-format", "value";
    DateFormat => "date-format", "value";
    TimeWithoutZone => "time-without-zone", "informational";
    DateOrder => "date-order", "business-rule";
    IdFormat => "id-format", "value";
    MissingMandatory => "missing-mandatory", "required";
    UnknownCode => "unknown-code", "code-invalid";
    ScaleRange => "scale-range", "value";
    ScaleStep => "scale-step", "value";
    ScaleVariant => "scale-variant", "business-rule";
    UnitInvalid => "unit-invalid", "value";
    ImplausibleValue => "implausible-value", "value";
    DonorOnAutologous => "donor-on-autologous", "business-rule";
    GvhdAutologous => "gvhd-autologous", "business-rule";
    AtgProduct => "atg-product", "code-invalid";
    ConsentNotGiven => "consent-not-given", "forbidden";
    ConsentNotAsked => "consent-not-asked", "business-rule";
    VitalStatusConflict => "vital-status-conflict", "business-rule";
    EdssDeathConflict => "edss-death-conflict", "business-rule";
    EngraftmentDateMissing => "engraftment-date-missing", "required";
    EngraftmentEarly => "engraftment-early", "business-rule";
    EngraftmentFailureEarly => "engraftment-failure-early", "business-rule";
    EngraftmentAfterDeath => "engraftment-after-death", "business-rule";
    TransplantOrder => "transplant-order", "business-rule";
    TransplantReference => "transplant-reference", "business-rule";
    TimePointWindow => "time-point-window", "business-rule";
    CodeVersion => "code-version", "code-invalid";
    CodeSystemMismatch => "code-system-mismatch", "code-invalid";
    SnomedExtension => "snomed-extension", "informational";
    RegimenUnmapped => "regimen-unmapped", "code-invalid";
    PerformanceAge => "performance-age", "business-rule";
    AbsentValue => "absent-value", "invariant";
    DiagnosisMissing => "diagnosis-missing", "business-rule";
}

impl Serialize for IssueCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl fmt::Display for IssueCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a problem is: a JSON pointer into the record, plus the CSV cell it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Location {
    /// JSON pointer into the registry record (`/transplants/0/cd34Dose/value`).
    pub pointer: String,
    /// 1-based CSV line and column name, for CSV input.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub csv: Option<CsvCell>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CsvCell {
    pub file: String,
    pub line: u64,
    pub column: String,
}

impl Location {
    pub fn pointer(p: impl Into<String>) -> Self {
        Location {
            pointer: p.into(),
            csv: None,
        }
    }

    /// The pointer as a FHIRPath-like path into the record (`transplants[0].cd34Dose.value`).
    pub fn expression(&self) -> String {
        let mut out = String::from("Record");
        for seg in self.pointer.split('/').skip(1) {
            let seg = seg.replace("~1", "/").replace("~0", "~");
            if !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit()) {
                out.push_str(&format!("[{seg}]"));
            } else {
                out.push('.');
                out.push_str(&seg);
            }
        }
        out
    }
}

/// One problem in a record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Issue {
    pub severity: Severity,
    pub code: IssueCode,
    pub location: Location,
    /// A sentence naming the field and the rule; never a patient value.
    pub message: String,
}

impl Issue {
    pub fn error(code: IssueCode, pointer: impl Into<String>, message: impl Into<String>) -> Self {
        Issue {
            severity: Severity::Error,
            code,
            location: Location::pointer(pointer),
            message: message.into(),
        }
    }
    pub fn warning(
        code: IssueCode,
        pointer: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Issue {
            severity: Severity::Warning,
            ..Issue::error(code, pointer, message)
        }
    }
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} [{}] {}",
            self.severity.as_str(),
            self.code,
            self.location.pointer
        )?;
        if let Some(c) = &self.location.csv {
            write!(f, " ({} line {}, column {})", c.file, c.line, c.column)?;
        }
        write!(f, ": {}", self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::terminology::Terminology;

    #[test]
    fn every_issue_code_is_published_in_the_engraft_issue_code_system() {
        let t = Terminology::bundled();
        for code in IssueCode::ALL {
            assert!(
                t.has("engraft-issue", code.as_str()),
                "{code} missing from CodeSystem engraft-issue (tools/gen_profiles.py)"
            );
        }
        let published = t
            .code_system(&crate::terminology::cs("engraft-issue"))
            .unwrap()
            .concepts
            .len();
        assert_eq!(published, IssueCode::ALL.len());
    }

    #[test]
    fn pointers_become_record_paths() {
        let l = Location::pointer("/transplants/0/cd34Dose/value");
        assert_eq!(l.expression(), "Record.transplants[0].cd34Dose.value");
    }
}

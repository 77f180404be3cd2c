//! Validation of FHIR R4 resources, offline and in-process.
//!
//! - [`base`]: the official R4 (4.0.1) definitions: unknown elements, choice types,
//!   cardinality at every level, JSON types, primitive formats ([`primitive`]) and required
//!   bindings to enumerable ValueSets.
//! - [`profile`]: Engraft's profiles in `profiles/` (`meta.profile`, or one named by the
//!   caller): cardinality, fixed and pattern values, bindings, narrowed types, slicing
//!   (value, pattern, type and profile discriminators), extension values, reference targets,
//!   and Engraft's own invariants (`eng-N`).
//! - [`invariant`]: the base R4 FHIRPath invariants of the types Engraft emits, written
//!   natively (ele-1, ext-1, per-1, qty-3, rat-1, ref-1, dom-2..5, obs-6/7, con-3/4/5,
//!   ppc-1..5, mad-1, pat-1).
//! - [`bundle`]: Bundle rules (bdl-1..5, 7, 8) and reference resolution inside a Bundle.
//!
//! Every issue carries a FHIRPath location; validation never stops at the first issue.

pub mod base;
pub mod bundle;
pub mod invariant;
pub mod primitive;
pub mod profile;

use serde_json::Value;

pub use base::{validate_resource, Definitions};
pub use profile::Profiles;

use crate::fhir::OutcomeIssue;
use crate::terminology::{Terminology, BASE};

/// Base R4 plus Engraft's profiles and terminology.
#[derive(Debug, Clone, Copy)]
pub struct Validator {
    pub definitions: &'static Definitions,
    pub profiles: &'static Profiles,
    pub terminology: &'static Terminology,
}

impl Validator {
    /// The bundled definitions, profiles and terminology.
    pub fn bundled() -> Validator {
        Validator {
            definitions: Definitions::r4(),
            profiles: Profiles::bundled(),
            terminology: Terminology::bundled(),
        }
    }

    /// Validates a resource (a Bundle with all its entries) against base R4, the profiles
    /// its resources declare in `meta.profile`, and `extra_profile` for the top resource.
    pub fn validate(&self, resource: &Value, extra_profile: Option<&str>) -> Vec<OutcomeIssue> {
        let root = resource["resourceType"]
            .as_str()
            .unwrap_or("Resource")
            .to_string();
        let mut issues = validate_resource(self.definitions, resource, &root);
        let unknown: std::collections::HashSet<String> = issues
            .iter()
            .filter(|i| i.detail == "unknown-element")
            .map(|i| i.expression.clone())
            .collect();
        let index = if root == "Bundle" {
            bundle::index(resource)
        } else {
            Default::default()
        };
        let resolve = |r: &str| index.get(r).map(String::as_str);
        self.profiles_of(resource, &root, extra_profile, &resolve, &mut issues);
        if root == "Bundle" {
            issues.extend(bundle::validate(resource, &index));
            for (i, e) in resource["entry"]
                .as_array()
                .into_iter()
                .flatten()
                .enumerate()
            {
                if let Some(r) = e.get("resource") {
                    self.profiles_of(
                        r,
                        &format!("Bundle.entry[{i}].resource"),
                        None,
                        &resolve,
                        &mut issues,
                    );
                }
            }
        }
        // An element base R4 does not know is reported once, not again by each profile rule
        // that meets it.
        if !unknown.is_empty() {
            issues.retain(|i| i.detail == "unknown-element" || !unknown.contains(&i.expression));
        }
        issues
    }

    fn profiles_of(
        &self,
        resource: &Value,
        root: &str,
        extra: Option<&str>,
        resolve: &profile::Resolver<'_>,
        issues: &mut Vec<OutcomeIssue>,
    ) {
        let declared = resource["meta"]["profile"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str);
        for url in declared.chain(extra) {
            match self.profiles.get(url) {
                Some(p) if Some(p.resource_type.as_str()) == resource["resourceType"].as_str() => {
                    issues.extend(profile::validate(
                        self.profiles,
                        self.terminology,
                        p,
                        resource,
                        root,
                        resolve,
                    ));
                }
                Some(_) => issues.push(OutcomeIssue {
                    severity: "error",
                    code: "structure",
                    detail: "profile-type".into(),
                    diagnostics: format!("Profile {url} is for another resource type."),
                    expression: root.to_string(),
                    location: None,
                }),
                None if url.starts_with(BASE) => issues.push(OutcomeIssue {
                    severity: "error",
                    code: "not-found",
                    detail: "profile-unknown".into(),
                    diagnostics: format!("Profile {url} is not an Engraft profile."),
                    expression: format!("{root}.meta.profile"),
                    location: None,
                }),
                None => issues.push(OutcomeIssue {
                    severity: "warning",
                    code: "not-supported",
                    detail: "profile-unknown".into(),
                    diagnostics: format!(
                        "Profile {url} is not loaded; validated against base R4 only."
                    ),
                    expression: format!("{root}.meta.profile"),
                    location: None,
                }),
            }
        }
    }
}

/// True when any issue is an error or fatal.
pub fn has_errors(issues: &[OutcomeIssue]) -> bool {
    issues
        .iter()
        .any(|i| matches!(i.severity, "error" | "fatal"))
}

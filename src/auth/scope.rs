//! SMART on FHIR system scopes, v2 (`system/Observation.rs`, `system/*.cruds`) and v1
//! (`system/*.read`, `system/Patient.write`, `system/*.*`), parsed into grants and matched
//! against what a route needs. Pure.
//!
//! What is deliberately not honoured (such scopes grant nothing here, and the token endpoint
//! refuses to issue them):
//! - `patient/` and `user/` scopes: Engraft's clients are backend services with no patient or
//!   user context to restrict them to;
//! - v2 granular scopes with a query (`system/Observation.rs?category=...`): Engraft would have
//!   to filter every answer by the query; until it does, honouring them would grant more than
//!   they say.
//!
//! Besides FHIR resource types, Engraft's own APIs are named by pseudo resource types (see
//! [`ENGRAFT_TYPES`]) so that one grammar covers every route.

use std::fmt;

/// The five SMART v2 interactions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Interaction {
    Create,
    Read,
    Update,
    Delete,
    Search,
}

impl Interaction {
    pub const ALL: [Interaction; 5] = [
        Interaction::Create,
        Interaction::Read,
        Interaction::Update,
        Interaction::Delete,
        Interaction::Search,
    ];

    pub fn letter(self) -> char {
        match self {
            Interaction::Create => 'c',
            Interaction::Read => 'r',
            Interaction::Update => 'u',
            Interaction::Delete => 'd',
            Interaction::Search => 's',
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// Engraft's pseudo resource types, usable in scopes like FHIR types:
/// - `RegistryRecord`: `/registry/records` (c: accept, r: read record, bundle and report,
///   u: replace, d: withdraw consent);
/// - `Metrics`: `GET /metrics` (r);
/// - `SyncDelivery`: `/sync` (r: status and failures, u: replay);
/// - `RegistrySubmission`: `/registry/submissions` (c: submit, r: read a submission).
pub const ENGRAFT_TYPES: &[&str] = &[
    "RegistryRecord",
    "Metrics",
    "SyncDelivery",
    "RegistrySubmission",
];

/// One granted scope: a resource type (or `*`) and a set of interactions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant<'a> {
    pub resource: &'a str,
    perms: u8,
}

impl Grant<'_> {
    pub fn allows(&self, resource: &str, i: Interaction) -> bool {
        (self.resource == "*" || self.resource == resource) && self.perms & i.bit() != 0
    }

    /// Whether everything this grant allows, `other` allows too.
    pub fn within(&self, other: &Grant<'_>) -> bool {
        (other.resource == "*" || other.resource == self.resource) && self.perms & !other.perms == 0
    }
}

/// Why a scope string is not a system scope Engraft honours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScopeError {
    /// Not `system/...` (for example `openid`, `patient/*.read`, `launch`).
    NotSystem,
    /// A v2 scope with a query restriction.
    Granular,
    /// `system/` but the rest does not parse.
    Malformed,
}

/// Parses one scope (`system/Observation.rs`, `system/*.read`...).
pub fn parse(scope: &str) -> Result<Grant<'_>, ScopeError> {
    let Some(rest) = scope.strip_prefix("system/") else {
        return Err(ScopeError::NotSystem);
    };
    if rest.contains('?') {
        return Err(ScopeError::Granular);
    }
    let (resource, perms) = rest.rsplit_once('.').ok_or(ScopeError::Malformed)?;
    let resource_ok = resource == "*"
        || (!resource.is_empty()
            && resource.starts_with(|c: char| c.is_ascii_uppercase())
            && resource.chars().all(|c| c.is_ascii_alphanumeric()));
    if !resource_ok {
        return Err(ScopeError::Malformed);
    }
    let all = Interaction::ALL.iter().fold(0, |a, i| a | i.bit());
    let read = Interaction::Read.bit() | Interaction::Search.bit();
    let write = Interaction::Create.bit() | Interaction::Update.bit() | Interaction::Delete.bit();
    let bits = match perms {
        "read" => read,
        "write" => write,
        "*" => all,
        v2 => {
            // v2: a non-empty subsequence of "cruds", in that order.
            let mut bits = 0u8;
            let mut next = 0usize;
            for ch in v2.chars() {
                let pos = Interaction::ALL[next..]
                    .iter()
                    .position(|i| i.letter() == ch)
                    .ok_or(ScopeError::Malformed)?;
                bits |= Interaction::ALL[next + pos].bit();
                next += pos + 1;
            }
            if bits == 0 {
                return Err(ScopeError::Malformed);
            }
            bits
        }
    };
    Ok(Grant {
        resource,
        perms: bits,
    })
}

/// A token's scopes: the space-separated list it carries, of which the system scopes count.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scopes {
    raw: Vec<String>,
}

impl Scopes {
    pub fn new<I: IntoIterator<Item = S>, S: Into<String>>(scopes: I) -> Scopes {
        let mut raw: Vec<String> = scopes.into_iter().map(Into::into).collect();
        raw.retain(|s| !s.is_empty());
        Scopes { raw }
    }

    /// From the space-separated `scope` claim or parameter.
    pub fn from_space_separated(s: &str) -> Scopes {
        Scopes::new(s.split_ascii_whitespace())
    }

    pub fn grants(&self) -> impl Iterator<Item = Grant<'_>> {
        self.raw.iter().filter_map(|s| parse(s).ok())
    }

    pub fn allows(&self, resource: &str, i: Interaction) -> bool {
        self.grants().any(|g| g.allows(resource, i))
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.raw.iter().map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw.join(" "))
    }
}

/// What a route needs: `interaction` on `resource`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Need {
    pub resource: String,
    pub interaction: Interaction,
}

impl Need {
    pub fn new(resource: impl Into<String>, interaction: Interaction) -> Need {
        Need {
            resource: resource.into(),
            interaction,
        }
    }

    /// The narrowest v2 scope that grants it, for error messages and documentation.
    pub fn scope(&self) -> String {
        format!("system/{}.{}", self.resource, self.interaction.letter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Interaction::*;

    #[test]
    fn v2_scopes_grant_exactly_their_letters() {
        let s = Scopes::from_space_separated("system/Observation.rs system/Patient.c");
        assert!(s.allows("Observation", Read));
        assert!(s.allows("Observation", Search));
        assert!(!s.allows("Observation", Create));
        assert!(!s.allows("Condition", Read));
        assert!(s.allows("Patient", Create));
        assert!(!s.allows("Patient", Read));
        let all = Scopes::from_space_separated("system/*.cruds");
        for i in Interaction::ALL {
            assert!(all.allows("Procedure", i));
            assert!(all.allows("RegistryRecord", i));
        }
    }

    #[test]
    fn v1_scopes_map_onto_v2_interactions() {
        let s = Scopes::from_space_separated("system/*.read system/Patient.write");
        assert!(s.allows("Condition", Read) && s.allows("Condition", Search));
        assert!(!s.allows("Condition", Create));
        assert!(s.allows("Patient", Create) && s.allows("Patient", Update));
        assert!(s.allows("Patient", Delete));
        let star = Scopes::from_space_separated("system/Observation.*");
        assert!(Interaction::ALL
            .iter()
            .all(|i| star.allows("Observation", *i)));
    }

    #[test]
    fn out_of_order_repeated_and_foreign_scopes_grant_nothing() {
        for bad in [
            "system/Observation.sr",
            "system/Observation.rr",
            "system/Observation.x",
            "system/Observation.",
            "system/.rs",
            "system/observation.rs",
            "patient/*.read",
            "user/Observation.rs",
            "openid",
            "system/Observation.rs?category=laboratory",
            "system/Obs-ervation.rs",
        ] {
            let s = Scopes::from_space_separated(bad);
            assert!(
                Interaction::ALL
                    .iter()
                    .all(|i| !s.allows("Observation", *i)),
                "{bad}"
            );
        }
        assert_eq!(parse("openid"), Err(ScopeError::NotSystem));
        assert_eq!(
            parse("system/Observation.rs?category=laboratory"),
            Err(ScopeError::Granular)
        );
    }

    #[test]
    fn a_grant_is_within_another_only_if_it_allows_no_more() {
        let wide = parse("system/*.rs").unwrap();
        assert!(parse("system/Observation.r").unwrap().within(&wide));
        assert!(parse("system/*.read").unwrap().within(&wide));
        assert!(!parse("system/*.cruds").unwrap().within(&wide));
        assert!(!parse("system/*.r")
            .unwrap()
            .within(&parse("system/Observation.r").unwrap()));
        assert!(!parse("system/Patient.write")
            .unwrap()
            .within(&parse("system/Patient.c").unwrap()));
    }

    #[test]
    fn a_need_names_its_narrowest_scope() {
        assert_eq!(
            Need::new("RegistryRecord", Create).scope(),
            "system/RegistryRecord.c"
        );
    }
}

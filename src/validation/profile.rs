//! Validation against Engraft's profiles (`profiles/`): the constraints of each
//! StructureDefinition's differential, compiled once and applied on top of the base R4
//! validation (which covers everything the differential does not change).
//!
//! Supported constraint kinds: cardinality (min/max) at any depth, fixed[x], pattern[x],
//! bindings (required: error; extensible/preferred: warning), narrowed choice types,
//! extension slices by url (per-slice cardinality; open slicing), the value type and binding
//! of Engraft's extensions, and reference target types (`targetProfile`) for references
//! resolved inside a Bundle.

use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::fhir::OutcomeIssue;
use crate::terminology::Terminology;

/// One constraint of a profile, at a dotted element path below the resource.
#[derive(Debug, Clone)]
struct Rule {
    /// Element id as in the differential (`Observation.extension:dueTo`).
    id: String,
    /// Path segments below the resource type (`["valueQuantity", "system"]`).
    path: Vec<String>,
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    Min(u32),
    Max(u32),
    Fixed(Value),
    Pattern(Value),
    Binding {
        required: bool,
        value_set: String,
    },
    Types(Vec<String>),
    Targets(Vec<String>),
    /// An extension slice: url and cardinality.
    ExtensionSlice {
        url: String,
        min: u32,
        max: Option<u32>,
    },
}

/// A compiled profile.
#[derive(Debug, Clone)]
pub struct Profile {
    pub url: String,
    pub resource_type: String,
    rules: Vec<Rule>,
    /// For extension definitions: (value type, required ValueSet).
    extension_value: Option<(Vec<String>, Option<String>)>,
}

/// Every profile and extension of `profiles/`, by canonical URL.
#[derive(Debug, Default)]
pub struct Profiles {
    by_url: HashMap<String, Profile>,
}

impl Profiles {
    /// The bundled profiles, compiled once.
    pub fn bundled() -> &'static Profiles {
        static P: std::sync::OnceLock<Profiles> = std::sync::OnceLock::new();
        P.get_or_init(|| Profiles::from_sources(crate::profiles::bundled_files()))
    }

    pub fn from_sources<'a>(files: impl IntoIterator<Item = (&'a str, &'a str)>) -> Profiles {
        let mut by_url = HashMap::new();
        for (_, text) in files {
            let Ok(v) = serde_json::from_str::<Value>(text) else {
                continue;
            };
            if v["resourceType"] != "StructureDefinition" {
                continue;
            }
            if let Some(p) = compile(&v) {
                by_url.insert(p.url.clone(), p);
            }
        }
        Profiles { by_url }
    }

    pub fn get(&self, url: &str) -> Option<&Profile> {
        self.by_url.get(url)
    }

    pub fn len(&self) -> usize {
        self.by_url.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_url.is_empty()
    }
}

fn compile(sd: &Value) -> Option<Profile> {
    let url = sd["url"].as_str()?.to_string();
    let resource_type = sd["type"].as_str()?.to_string();
    let mut rules = Vec::new();
    let mut extension_value = None;
    for el in sd["differential"]["element"].as_array()? {
        let id = el["id"].as_str()?.to_string();
        let path_str = el["path"].as_str()?;
        let path: Vec<String> = path_str.split('.').skip(1).map(str::to_string).collect();
        if path.is_empty() {
            continue;
        }
        if resource_type == "Extension" {
            if path == ["value[x]"] {
                let types = el["type"]
                    .as_array()
                    .map(|ts| {
                        ts.iter()
                            .filter_map(|t| t["code"].as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default();
                let vs = el["binding"]["valueSet"]
                    .as_str()
                    .filter(|_| el["binding"]["strength"] == "required")
                    .map(str::to_string);
                extension_value = Some((types, vs));
            }
            continue;
        }
        // Extension slices: counted by url; the slicing entry itself adds nothing.
        if let Some(slice) = el["sliceName"].as_str() {
            let _ = slice;
            if path.last().map(String::as_str) == Some("extension") {
                let ext_url = el["type"][0]["profile"][0].as_str()?.to_string();
                let min = el["min"].as_u64().unwrap_or(0) as u32;
                let max = el["max"].as_str().and_then(|m| m.parse().ok());
                rules.push(Rule {
                    id,
                    path,
                    kind: Kind::ExtensionSlice {
                        url: ext_url,
                        min,
                        max,
                    },
                });
            }
            continue;
        }
        if let Some(min) = el["min"].as_u64() {
            rules.push(Rule {
                id: id.clone(),
                path: path.clone(),
                kind: Kind::Min(min as u32),
            });
        }
        if let Some(max) = el["max"].as_str().and_then(|m| m.parse::<u32>().ok()) {
            rules.push(Rule {
                id: id.clone(),
                path: path.clone(),
                kind: Kind::Max(max),
            });
        }
        if let Some(obj) = el.as_object() {
            for (k, v) in obj {
                if k.starts_with("fixed") {
                    rules.push(Rule {
                        id: id.clone(),
                        path: path.clone(),
                        kind: Kind::Fixed(v.clone()),
                    });
                } else if k.starts_with("pattern") {
                    rules.push(Rule {
                        id: id.clone(),
                        path: path.clone(),
                        kind: Kind::Pattern(v.clone()),
                    });
                }
            }
        }
        if let (Some(strength), Some(vs)) = (
            el["binding"]["strength"].as_str(),
            el["binding"]["valueSet"].as_str(),
        ) {
            rules.push(Rule {
                id: id.clone(),
                path: path.clone(),
                kind: Kind::Binding {
                    required: strength == "required",
                    value_set: vs.to_string(),
                },
            });
        }
        if let Some(types) = el["type"].as_array() {
            let codes: Vec<String> = types
                .iter()
                .filter_map(|t| t["code"].as_str().map(str::to_string))
                .collect();
            if path.last().is_some_and(|p| p.ends_with("[x]")) {
                rules.push(Rule {
                    id: id.clone(),
                    path: path.clone(),
                    kind: Kind::Types(codes.clone()),
                });
            }
            let targets: Vec<String> = types
                .iter()
                .flat_map(|t| t["targetProfile"].as_array().into_iter().flatten())
                .filter_map(|p| p.as_str()?.rsplit('/').next().map(str::to_string))
                .collect();
            if !targets.is_empty() {
                rules.push(Rule {
                    id,
                    path,
                    kind: Kind::Targets(targets),
                });
            }
        }
    }
    Some(Profile {
        url,
        resource_type,
        rules,
        extension_value,
    })
}

/// A value found at a path, with its FHIRPath.
struct Node<'v> {
    value: &'v Value,
    expr: String,
}

/// The children named `seg` of `obj` (a choice `value[x]` matches any `valueXxx`).
fn children<'v>(obj: &'v Map<String, Value>, seg: &str, expr: &str) -> Vec<Node<'v>> {
    let mut out = Vec::new();
    let mut push = |key: &str, v: &'v Value| match v {
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                out.push(Node {
                    value: item,
                    expr: format!("{expr}.{key}[{i}]"),
                });
            }
        }
        other => out.push(Node {
            value: other,
            expr: format!("{expr}.{key}"),
        }),
    };
    match seg.strip_suffix("[x]") {
        Some(base) => {
            for (k, v) in obj {
                if k.len() > base.len()
                    && k.starts_with(base)
                    && k.as_bytes()[base.len()].is_ascii_uppercase()
                {
                    push(k, v);
                }
            }
        }
        None => {
            if let Some(v) = obj.get(seg) {
                push(seg, v);
            }
        }
    }
    out
}

/// The nodes at `path` below `root`, and the parents of the last segment.
fn select<'v>(root: &'v Value, root_expr: &str, path: &[String]) -> (Vec<Node<'v>>, Vec<Node<'v>>) {
    let mut parents = vec![Node {
        value: root,
        expr: root_expr.to_string(),
    }];
    for (i, seg) in path.iter().enumerate() {
        let mut next = Vec::new();
        for p in &parents {
            if let Some(obj) = p.value.as_object() {
                next.extend(children(obj, seg, &p.expr));
            }
        }
        if i + 1 == path.len() {
            return (next, parents);
        }
        parents = next;
    }
    (Vec::new(), parents)
}

/// `pattern` is contained in `value` (FHIR pattern[x] semantics).
fn matches_pattern(value: &Value, pattern: &Value) -> bool {
    match (value, pattern) {
        (Value::Object(v), Value::Object(p)) => p
            .iter()
            .all(|(k, pv)| v.get(k).is_some_and(|vv| matches_pattern(vv, pv))),
        (Value::Array(v), Value::Array(p)) => p
            .iter()
            .all(|pv| v.iter().any(|vv| matches_pattern(vv, pv))),
        (v, p) => v == p,
    }
}

/// Context for resolving references inside a Bundle: fullUrl -> resource type.
pub type Resolver<'a> = dyn Fn(&str) -> Option<&'a str> + 'a;

/// Validates `resource` against `profile`. `root` is the resource's FHIRPath.
pub fn validate(
    profiles: &Profiles,
    term: &Terminology,
    profile: &Profile,
    resource: &Value,
    root: &str,
    resolve: &Resolver<'_>,
) -> Vec<OutcomeIssue> {
    let mut issues = Vec::new();
    let mut issue =
        |severity: &'static str, code: &'static str, detail: &str, expr: String, msg: String| {
            issues.push(OutcomeIssue {
                severity,
                code,
                detail: detail.to_string(),
                diagnostics: msg,
                expression: expr,
                location: None,
            });
        };
    let name = profile
        .url
        .rsplit('/')
        .next()
        .unwrap_or(&profile.url)
        .to_string();
    for rule in &profile.rules {
        let (nodes, parents) = select(resource, root, &rule.path);
        let leaf = rule.path.last().map(String::as_str).unwrap_or("");
        match &rule.kind {
            Kind::Min(min) => {
                for p in &parents {
                    let Some(obj) = p.value.as_object() else {
                        continue;
                    };
                    let n = children(obj, leaf, &p.expr).len() as u32;
                    if n < *min {
                        issue(
                            "error",
                            "required",
                            "profile-cardinality",
                            format!("{}.{}", p.expr, leaf.trim_end_matches("[x]")),
                            format!(
                                "{} requires at least {min} (profile {name}, element {}).",
                                rule.id, rule.id
                            ),
                        );
                    }
                }
            }
            Kind::Max(max) => {
                for p in &parents {
                    let Some(obj) = p.value.as_object() else {
                        continue;
                    };
                    let n = children(obj, leaf, &p.expr).len() as u32;
                    if n > *max {
                        issue(
                            "error",
                            "structure",
                            "profile-cardinality",
                            format!("{}.{}", p.expr, leaf.trim_end_matches("[x]")),
                            format!("{} allows at most {max} (profile {name}).", rule.id),
                        );
                    }
                }
            }
            Kind::Fixed(f) => {
                for n in &nodes {
                    if n.value != f {
                        issue(
                            "error",
                            "value",
                            "profile-fixed",
                            n.expr.clone(),
                            format!("{} must have the fixed value of profile {name}.", rule.id),
                        );
                    }
                }
            }
            Kind::Pattern(pat) => {
                for n in &nodes {
                    if !matches_pattern(n.value, pat) {
                        issue(
                            "error",
                            "value",
                            "profile-pattern",
                            n.expr.clone(),
                            format!("{} does not match the pattern of profile {name}.", rule.id),
                        );
                    }
                }
            }
            Kind::Binding {
                required,
                value_set,
            } => {
                for n in &nodes {
                    if !in_value_set(term, value_set, n.value) {
                        let (sev, detail) = if *required {
                            ("error", "profile-binding")
                        } else {
                            ("warning", "profile-binding-extensible")
                        };
                        issue(
                            sev,
                            "code-invalid",
                            detail,
                            n.expr.clone(),
                            format!(
                                "{} is not in ValueSet {value_set} (profile {name}).",
                                rule.id
                            ),
                        );
                    }
                }
            }
            Kind::Types(types) => {
                for p in &parents {
                    let Some(obj) = p.value.as_object() else {
                        continue;
                    };
                    let base = leaf.trim_end_matches("[x]");
                    for k in obj.keys().filter(|k| {
                        k.len() > base.len()
                            && k.starts_with(base)
                            && k.as_bytes()[base.len()].is_ascii_uppercase()
                    }) {
                        let t = &k[base.len()..];
                        if !types.iter().any(|allowed| allowed.eq_ignore_ascii_case(t)) {
                            issue(
                                "error",
                                "structure",
                                "profile-type",
                                format!("{}.{k}", p.expr),
                                format!(
                                    "{} allows only {} (profile {name}).",
                                    rule.id,
                                    types.join(", ")
                                ),
                            );
                        }
                    }
                }
            }
            Kind::Targets(targets) => {
                for n in &nodes {
                    let Some(r) = n.value.get("reference").and_then(Value::as_str) else {
                        continue;
                    };
                    let Some(t) = resolve(r) else { continue };
                    if !targets.iter().any(|x| x == t || x == "Resource") {
                        issue(
                            "error",
                            "structure",
                            "profile-target",
                            format!("{}.reference", n.expr),
                            format!(
                                "{} must refer to {} (profile {name}).",
                                rule.id,
                                targets.join(" or ")
                            ),
                        );
                    }
                }
            }
            Kind::ExtensionSlice { url, min, max } => {
                for p in &parents {
                    let Some(obj) = p.value.as_object() else {
                        continue;
                    };
                    let count = obj
                        .get("extension")
                        .and_then(Value::as_array)
                        .map(|es| es.iter().filter(|e| e["url"] == url.as_str()).count())
                        .unwrap_or(0) as u32;
                    if count < *min || max.is_some_and(|m| count > m) {
                        issue(
                            "error",
                            "structure",
                            "profile-slice",
                            format!("{}.extension", p.expr),
                            format!(
                                "Slice {} needs {}..{} extensions {url} (profile {name}).",
                                rule.id,
                                min,
                                max.map(|m| m.to_string()).unwrap_or("*".into())
                            ),
                        );
                    }
                }
            }
        }
    }
    extensions(profiles, term, resource, root, &mut issues);
    issues
}

/// Engraft's own extensions anywhere in the resource: value type and required binding.
fn extensions(
    profiles: &Profiles,
    term: &Terminology,
    v: &Value,
    expr: &str,
    issues: &mut Vec<OutcomeIssue>,
) {
    match v {
        Value::Object(obj) => {
            for (k, child) in obj {
                if k == "extension" || k == "modifierExtension" {
                    for (i, e) in child.as_array().into_iter().flatten().enumerate() {
                        let e_expr = format!("{expr}.{k}[{i}]");
                        let Some(url) = e["url"].as_str() else {
                            continue;
                        };
                        if let Some((types, vs)) =
                            profiles.get(url).and_then(|p| p.extension_value.as_ref())
                        {
                            let value = e
                                .as_object()
                                .and_then(|o| o.iter().find(|(k, _)| k.starts_with("value")));
                            match value {
                                None => issues.push(OutcomeIssue {
                                    severity: "error",
                                    code: "required",
                                    detail: "extension-value".into(),
                                    diagnostics: format!("Extension {url} needs a value."),
                                    expression: e_expr.clone(),
                                    location: None,
                                }),
                                Some((key, val)) => {
                                    let t = &key["value".len()..];
                                    if !types.iter().any(|x| x.eq_ignore_ascii_case(t)) {
                                        issues.push(OutcomeIssue {
                                            severity: "error",
                                            code: "structure",
                                            detail: "extension-type".into(),
                                            diagnostics: format!(
                                                "Extension {url} takes {}.",
                                                types.join(", ")
                                            ),
                                            expression: format!("{e_expr}.{key}"),
                                            location: None,
                                        });
                                    } else if let Some(vs) = vs {
                                        if !in_value_set(term, vs, val) {
                                            issues.push(OutcomeIssue {
                                                severity: "error",
                                                code: "code-invalid",
                                                detail: "extension-binding".into(),
                                                diagnostics: format!(
                                                    "Extension {url} value is not in {vs}."
                                                ),
                                                expression: format!("{e_expr}.{key}"),
                                                location: None,
                                            });
                                        }
                                    }
                                }
                            }
                        }
                        extensions(profiles, term, e, &e_expr, issues);
                    }
                } else {
                    match child {
                        Value::Array(items) => {
                            for (i, item) in items.iter().enumerate() {
                                extensions(
                                    profiles,
                                    term,
                                    item,
                                    &format!("{expr}.{k}[{i}]"),
                                    issues,
                                );
                            }
                        }
                        Value::Object(_) => extensions(
                            profiles,
                            term,
                            child,
                            &format!("{expr}.{}", k.trim_start_matches('_')),
                            issues,
                        ),
                        _ => {}
                    }
                }
            }
        }
        Value::Array(items) => items
            .iter()
            .for_each(|i| extensions(profiles, term, i, expr, issues)),
        _ => {}
    }
}

/// Whether a code, Coding or CodeableConcept is in an enumerable ValueSet (Engraft's, or a
/// required R4 one). Unknown ValueSets are not judged.
fn in_value_set(term: &Terminology, vs: &str, v: &Value) -> bool {
    let codes: Vec<(Option<&str>, &str)> = match v {
        Value::String(c) => vec![(None, c.as_str())],
        Value::Object(o) if o.contains_key("coding") => o["coding"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| Some((c["system"].as_str(), c["code"].as_str()?)))
            .collect(),
        Value::Object(o) => o
            .get("code")
            .and_then(Value::as_str)
            .map(|c| vec![(o.get("system").and_then(Value::as_str), c)])
            .unwrap_or_default(),
        _ => return true,
    };
    let Some(set) = term.value_set(vs) else {
        return true;
    };
    codes.iter().any(|(s, c)| {
        set.codes
            .iter()
            .any(|(ss, cc)| cc == c && s.is_none_or(|s| s == ss))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bundled_profile_compiles() {
        let p = Profiles::bundled();
        assert_eq!(p.len(), 37);
        let obs = p
            .get("https://engraft.dev/fhir/StructureDefinition/engraft-lab")
            .unwrap();
        assert_eq!(obs.resource_type, "Observation");
        assert!(!obs.rules.is_empty());
    }

    #[test]
    fn patterns_are_containment() {
        let v = serde_json::json!({"coding": [{"system": "s", "code": "a", "display": "A"}, {"system": "t", "code": "b"}], "text": "x"});
        assert!(matches_pattern(
            &v,
            &serde_json::json!({"coding": [{"system": "t", "code": "b"}]})
        ));
        assert!(!matches_pattern(
            &v,
            &serde_json::json!({"coding": [{"system": "t", "code": "c"}]})
        ));
    }
}

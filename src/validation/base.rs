//! Base R4 structural validation against `definitions/r4-core.json` (generated from the
//! official R4 definitions by `tools/r4defs.py`).

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::fhir::OutcomeIssue;

static R4_CORE: &str = include_str!("../../definitions/r4-core.json");

/// One element definition of the snapshot of a resource or datatype.
#[derive(Debug, Clone)]
pub struct ElementDef {
    pub path: String,
    pub min: u32,
    /// `None` for `*`.
    pub max: Option<u32>,
    pub types: Vec<String>,
    pub binding: Option<(String, String)>,
    pub content_reference: Option<String>,
}

impl ElementDef {
    /// The last path segment (`value[x]`, `status`).
    pub fn name(&self) -> &str {
        self.path.rsplit('.').next().unwrap_or(&self.path)
    }
}

/// The loaded R4 definitions, indexed for validation.
#[derive(Debug)]
pub struct Definitions {
    elements: HashMap<String, ElementDef>,
    children: HashMap<String, Vec<String>>,
    value_sets: HashMap<String, HashSet<(String, String)>>,
    codes_only: HashMap<String, HashSet<String>>,
}

/// (min, max, types, binding, contentReference) as `tools/r4defs.py` writes them.
type RawElement = (
    u32,
    String,
    Vec<String>,
    Option<(String, String)>,
    Option<String>,
);

#[derive(Deserialize)]
struct Raw {
    elements: HashMap<String, RawElement>,
    #[serde(rename = "valueSets")]
    value_sets: HashMap<String, Vec<(String, String)>>,
}

impl Definitions {
    /// The R4 core definitions bundled in the binary, loaded once.
    pub fn r4() -> &'static Definitions {
        static D: OnceLock<Definitions> = OnceLock::new();
        D.get_or_init(|| Definitions::parse(R4_CORE).expect("bundled R4 definitions parse"))
    }

    pub fn parse(text: &str) -> Result<Definitions, serde_json::Error> {
        let raw: Raw = serde_json::from_str(text)?;
        let mut elements = HashMap::with_capacity(raw.elements.len());
        let mut children: HashMap<String, Vec<String>> = HashMap::new();
        for (path, (min, max, types, binding, content_reference)) in raw.elements {
            if let Some((parent, _)) = path.rsplit_once('.') {
                children
                    .entry(parent.to_string())
                    .or_default()
                    .push(path.clone());
            }
            elements.insert(
                path.clone(),
                ElementDef {
                    path,
                    min,
                    max: max.parse().ok(),
                    types,
                    binding,
                    content_reference: content_reference
                        .map(|c| c.trim_start_matches('#').to_string()),
                },
            );
        }
        let codes_only = raw
            .value_sets
            .iter()
            .map(|(k, v)| (k.clone(), v.iter().map(|(_, c)| c.clone()).collect()))
            .collect();
        let value_sets = raw
            .value_sets
            .into_iter()
            .map(|(k, v)| (k, v.into_iter().collect()))
            .collect();
        Ok(Definitions {
            elements,
            children,
            value_sets,
            codes_only,
        })
    }

    pub fn element(&self, path: &str) -> Option<&ElementDef> {
        self.elements.get(path)
    }

    pub fn is_resource_or_type(&self, name: &str) -> bool {
        self.elements.contains_key(name)
    }

    fn children(&self, path: &str) -> &[String] {
        self.children.get(path).map(Vec::as_slice).unwrap_or(&[])
    }
}

fn is_primitive(t: &str) -> bool {
    t.starts_with("System.") || t.chars().next().is_some_and(|c| c.is_ascii_lowercase())
}

enum Json {
    Bool,
    Number,
    String,
}

fn json_kind(t: &str) -> Json {
    match t {
        "boolean" | "System.Boolean" => Json::Bool,
        "integer" | "positiveInt" | "unsignedInt" | "decimal" | "System.Integer"
        | "System.Decimal" => Json::Number,
        _ => Json::String,
    }
}

fn capitalise(t: &str) -> String {
    let mut c = t.chars();
    match c.next() {
        Some(f) => f.to_ascii_uppercase().to_string() + c.as_str(),
        None => String::new(),
    }
}

/// Validates one resource (any type, Bundles included) against base R4; `root` is the FHIRPath
/// prefix of its location (`Bundle.entry[3].resource` or the resource type).
pub fn validate_resource(defs: &Definitions, resource: &Value, root: &str) -> Vec<OutcomeIssue> {
    let mut v = Walker {
        defs,
        issues: Vec::new(),
    };
    v.resource(resource, root);
    v.issues
}

struct Walker<'d> {
    defs: &'d Definitions,
    issues: Vec<OutcomeIssue>,
}

impl Walker<'_> {
    fn issue(&mut self, code: &'static str, detail: &str, expr: &str, msg: String) {
        self.issues.push(OutcomeIssue {
            severity: "error",
            code,
            detail: detail.to_string(),
            diagnostics: msg,
            expression: expr.to_string(),
            location: None,
        });
    }

    fn resource(&mut self, v: &Value, expr: &str) {
        let Some(obj) = v.as_object() else {
            self.issue(
                "structure",
                "structure",
                expr,
                "A resource must be a JSON object.".into(),
            );
            return;
        };
        let Some(rt) = obj.get("resourceType").and_then(Value::as_str) else {
            self.issue(
                "required",
                "resourceType",
                expr,
                "The resource has no resourceType.".into(),
            );
            return;
        };
        if !self.defs.is_resource_or_type(rt)
            || rt.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        {
            self.issue(
                "structure",
                "resourceType",
                expr,
                "The resourceType is not an R4 resource type.".into(),
            );
            return;
        }
        self.object(obj, rt, expr, true);
    }

    /// Validates the members of `obj` against the children of definition path `def`.
    fn object(&mut self, obj: &Map<String, Value>, def: &str, expr: &str, is_resource: bool) {
        let children = self.defs.children(def);
        let mut seen: HashSet<String> = HashSet::new();
        for (key, value) in obj {
            if is_resource && key == "resourceType" {
                continue;
            }
            let (name, is_ext) = match key.strip_prefix('_') {
                Some(n) => (n, true),
                None => (key.as_str(), false),
            };
            let Some((el, ty)) = self.resolve(children, def, name) else {
                self.issue(
                    "structure",
                    "unknown-element",
                    &format!("{expr}.{key}"),
                    format!("Unknown element '{key}' in {def}."),
                );
                continue;
            };
            seen.insert(el.path.clone());
            let child_expr = format!("{expr}.{name}");
            if is_ext {
                // Primitive extensions: id and extension only.
                self.each(value, &el, &child_expr, |w, item, e| {
                    if let Some(o) = item.as_object() {
                        w.object(o, "Element", e, false);
                    } else if !item.is_null() {
                        w.issue(
                            "structure",
                            "structure",
                            e,
                            "A primitive's extension holder must be an object.".into(),
                        );
                    }
                });
                continue;
            }
            let ty = ty.to_string();
            let el = el.clone();
            self.each(value, &el, &child_expr, |w, item, e| {
                w.value(item, &el, &ty, e)
            });
        }
        // Required children.
        for path in children {
            let Some(el) = self.defs.element(path) else {
                continue;
            };
            if el.min == 0 || seen.contains(path) {
                continue;
            }
            let name = el.name();
            let present = match name.strip_suffix("[x]") {
                Some(base) => obj.keys().any(|k| {
                    k.trim_start_matches('_').starts_with(base)
                        && k.trim_start_matches('_').len() > base.len()
                }),
                None => obj.contains_key(name) || obj.contains_key(&format!("_{name}")),
            };
            if !present {
                self.issue(
                    "required",
                    "cardinality",
                    &format!("{expr}.{}", name.trim_end_matches("[x]")),
                    format!("{path} is required (min {}).", el.min),
                );
            }
        }
    }

    /// The element a JSON key names, and its type (choice elements pick the type from the key).
    fn resolve(&self, children: &[String], def: &str, name: &str) -> Option<(ElementDef, String)> {
        if let Some(el) = self.defs.element(&format!("{def}.{name}")) {
            let ty = match (&el.content_reference, el.types.as_slice()) {
                (Some(r), _) => format!("#{r}"),
                (None, [one]) => one.clone(),
                (None, []) => "Element".into(),
                (None, many) => many[0].clone(),
            };
            return Some((el.clone(), ty));
        }
        for path in children {
            let el = self.defs.element(path)?;
            if let Some(base) = el.name().strip_suffix("[x]") {
                if let Some(suffix) = name.strip_prefix(base) {
                    if let Some(t) = el.types.iter().find(|t| capitalise(t) == suffix) {
                        return Some((el.clone(), t.clone()));
                    }
                }
            }
        }
        None
    }

    /// Applies cardinality rules and calls `f` on each item.
    fn each(
        &mut self,
        value: &Value,
        el: &ElementDef,
        expr: &str,
        mut f: impl FnMut(&mut Self, &Value, &str),
    ) {
        let repeating = el.max != Some(1);
        match value {
            Value::Array(items) if repeating => {
                if items.is_empty() {
                    self.issue(
                        "structure",
                        "structure",
                        expr,
                        "Arrays must not be empty.".into(),
                    );
                }
                if let Some(max) = el.max {
                    if items.len() > max as usize {
                        self.issue(
                            "structure",
                            "cardinality",
                            expr,
                            format!("{} allows at most {max} items.", el.path),
                        );
                    }
                }
                for (i, item) in items.iter().enumerate() {
                    f(self, item, &format!("{expr}[{i}]"));
                }
            }
            Value::Array(_) => self.issue(
                "structure",
                "cardinality",
                expr,
                format!("{} allows at most 1 value; an array was given.", el.path),
            ),
            _ if repeating => self.issue(
                "structure",
                "structure",
                expr,
                format!("{} repeats and must be a JSON array.", el.path),
            ),
            other => f(self, other, expr),
        }
    }

    fn value(&mut self, v: &Value, el: &ElementDef, ty: &str, expr: &str) {
        if let Some(r) = ty.strip_prefix('#') {
            match v.as_object() {
                Some(o) => self.object(o, r, expr, false),
                None => self.issue(
                    "structure",
                    "structure",
                    expr,
                    format!("{} must be an object.", el.path),
                ),
            }
            return;
        }
        if is_primitive(ty) {
            let ok = match json_kind(ty) {
                Json::Bool => v.is_boolean(),
                Json::Number => v.is_number(),
                Json::String => v.as_str().is_some_and(|s| !s.trim().is_empty()),
            };
            if !ok {
                self.issue(
                    "value",
                    "primitive",
                    expr,
                    format!(
                        "{} must be a non-empty JSON {} ({ty}).",
                        el.path,
                        match json_kind(ty) {
                            Json::Bool => "boolean",
                            Json::Number => "number",
                            Json::String => "string",
                        }
                    ),
                );
                return;
            }
            if let Some(why) = super::primitive::check(ty, v) {
                self.issue("value", "format", expr, format!("{}: {why}.", el.path));
                return;
            }
            if let Some((strength, vs)) = &el.binding {
                if strength == "required" && ty == "code" {
                    if let (Some(codes), Some(c)) = (self.defs.codes_only.get(vs), v.as_str()) {
                        if !codes.contains(c) {
                            self.issue(
                                "code-invalid",
                                "binding",
                                expr,
                                format!("The code is not in the required ValueSet {vs}."),
                            );
                        }
                    }
                }
            }
            return;
        }
        let Some(obj) = v.as_object() else {
            self.issue(
                "structure",
                "structure",
                expr,
                format!("{} must be a JSON object ({ty}).", el.path),
            );
            return;
        };
        if ty == "Resource" {
            self.resource(v, expr);
            return;
        }
        let def = if matches!(ty, "BackboneElement" | "Element")
            && !self.defs.children(&el.path).is_empty()
        {
            el.path.clone()
        } else {
            ty.to_string()
        };
        self.object(obj, &def, expr, false);
        if let Some((strength, vs)) = &el.binding {
            if strength == "required" {
                self.binding(obj, ty, vs, expr);
            }
        }
    }

    fn binding(&mut self, obj: &Map<String, Value>, ty: &str, vs: &str, expr: &str) {
        let Some(set) = self.defs.value_sets.get(vs) else {
            return;
        };
        let coding_ok = |c: &Value| {
            let (Some(s), Some(k)) = (c["system"].as_str(), c["code"].as_str()) else {
                return false;
            };
            set.contains(&(s.to_string(), k.to_string()))
        };
        let ok = match ty {
            "Coding" => coding_ok(&Value::Object(obj.clone())),
            "CodeableConcept" => obj
                .get("coding")
                .and_then(Value::as_array)
                .is_some_and(|cs| cs.iter().any(coding_ok)),
            _ => true,
        };
        if !ok {
            self.issue(
                "code-invalid",
                "binding",
                expr,
                format!("No coding is in the required ValueSet {vs}."),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn codes(issues: &[OutcomeIssue]) -> Vec<(String, String)> {
        issues
            .iter()
            .map(|i| (i.detail.clone(), i.expression.clone()))
            .collect()
    }

    #[test]
    fn a_valid_observation_passes() {
        let obs = json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "valueQuantity": {"value": 1, "unit": "kg"}});
        assert!(validate_resource(Definitions::r4(), &obs, "Observation").is_empty());
    }

    #[test]
    fn cardinality_unknown_elements_and_bindings_are_all_reported() {
        let obs = json!({
            "resourceType": "Observation", "status": "done",
            "code": {"coding": [{"system": "http://loinc.org", "code": "1"}]},
            "component": [{"valueString": "x"}],
            "subject": [{"reference": "Patient/1"}],
            "bogus": 1, "valueFoo": 2
        });
        let got = codes(&validate_resource(Definitions::r4(), &obs, "Observation"));
        for want in [
            ("binding", "Observation.status"),
            ("required", "Observation.component[0].code"),
            ("cardinality", "Observation.subject"),
            ("unknown-element", "Observation.bogus"),
            ("unknown-element", "Observation.valueFoo"),
        ] {
            let want = (
                if want.0 == "required" {
                    "cardinality"
                } else {
                    want.0
                }
                .to_string(),
                want.1.to_string(),
            );
            assert!(got.contains(&want), "missing {want:?} in {got:?}");
        }
    }

    #[test]
    fn content_references_and_nested_resources_are_followed() {
        let b = json!({"resourceType": "Bundle", "type": "collection", "entry": [
            {"resource": {"resourceType": "Questionnaire", "status": "draft", "item": [{"linkId": "a", "type": "group", "item": [{"type": "string"}]}]}}
        ]});
        let got = codes(&validate_resource(Definitions::r4(), &b, "Bundle"));
        assert_eq!(
            got,
            vec![(
                "cardinality".to_string(),
                "Bundle.entry[0].resource.item[0].item[0].linkId".to_string()
            )]
        );
    }
}

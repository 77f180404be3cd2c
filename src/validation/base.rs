//! Base R4 structural validation against `definitions/r4-core.json` (generated from the
//! official R4 definitions by `tools/r4defs.py`).

use foldhash::{HashMap, HashSet};
use std::sync::OnceLock;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::fhir::OutcomeIssue;

static R4_CORE: &str = include_str!("../../definitions/r4-core.json");

/// One element definition of the snapshot of a resource or datatype.
#[derive(Debug, Clone)]
pub struct ElementDef {
    pub path: String,
    /// The last path segment (`value[x]`, `status`).
    name: String,
    /// `_` + name: the key of a primitive's extension holder.
    extension_key: String,
    pub min: u32,
    /// `None` for `*`.
    pub max: Option<u32>,
    pub types: Vec<String>,
    pub binding: Option<(String, String)>,
    pub content_reference: Option<String>,
    /// `#` + content reference, the type marker the walker follows.
    content_ref_marked: String,
}

impl ElementDef {
    /// The last path segment (`value[x]`, `status`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The type the walker follows for a key naming this element without a choice suffix.
    fn walk_type(&self) -> &str {
        match (&self.content_reference, self.types.as_slice()) {
            (Some(_), _) => self.content_ref_marked.as_str(),
            (None, [one, ..]) => one.as_str(),
            (None, []) => "Element",
        }
    }
}

/// The children of one definition path, indexed for the walker: a JSON key is found with one
/// hash lookup, and only the required children are visited for cardinality.
#[derive(Debug, Default)]
struct Node {
    /// Plain element names to their index in `Definitions::elements`.
    by_name: HashMap<String, usize>,
    /// Choice elements: (name without `[x]`, index).
    choices: Vec<(String, usize)>,
    /// Children with `min > 0`.
    required: Vec<usize>,
}

/// The loaded R4 definitions, indexed for validation.
#[derive(Debug)]
pub struct Definitions {
    elements: Vec<ElementDef>,
    by_path: HashMap<String, usize>,
    nodes: HashMap<String, Node>,
    /// The node of a path without children: every key is unknown, nothing is required.
    leaf: Node,
    /// Required ValueSets: system to codes.
    value_sets: HashMap<String, HashMap<String, HashSet<String>>>,
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
    /// Sorted by path, so that the index does not depend on a hash map's order.
    elements: std::collections::BTreeMap<String, RawElement>,
    #[serde(rename = "valueSets")]
    value_sets: std::collections::HashMap<String, Vec<(String, String)>>,
}

impl Definitions {
    /// The R4 core definitions bundled in the binary, loaded once.
    pub fn r4() -> &'static Definitions {
        static D: OnceLock<Definitions> = OnceLock::new();
        D.get_or_init(|| Definitions::parse(R4_CORE).expect("bundled R4 definitions parse"))
    }

    pub fn parse(text: &str) -> Result<Definitions, serde_json::Error> {
        let raw: Raw = serde_json::from_str(text)?;
        let mut elements = Vec::with_capacity(raw.elements.len());
        let mut by_path = HashMap::with_capacity_and_hasher(raw.elements.len(), Default::default());
        let mut nodes: HashMap<String, Node> = HashMap::default();
        for (path, (min, max, types, binding, content_reference)) in raw.elements {
            let i = elements.len();
            let name = path.rsplit('.').next().unwrap_or(&path).to_string();
            if let Some((parent, _)) = path.rsplit_once('.') {
                let node = nodes.entry(parent.to_string()).or_default();
                match name.strip_suffix("[x]") {
                    Some(base) => node.choices.push((base.to_string(), i)),
                    None => {
                        node.by_name.insert(name.clone(), i);
                    }
                }
                if min > 0 {
                    node.required.push(i);
                }
            }
            by_path.insert(path.clone(), i);
            elements.push(ElementDef {
                path,
                extension_key: format!("_{name}"),
                name,
                min,
                max: max.parse().ok(),
                types,
                binding,
                content_ref_marked: content_reference
                    .as_deref()
                    .map(|c| format!("#{}", c.trim_start_matches('#')))
                    .unwrap_or_default(),
                content_reference: content_reference.map(|c| c.trim_start_matches('#').to_string()),
            });
        }
        let codes_only = raw
            .value_sets
            .iter()
            .map(|(k, v)| (k.clone(), v.iter().map(|(_, c)| c.clone()).collect()))
            .collect();
        let value_sets = raw
            .value_sets
            .into_iter()
            .map(|(k, v)| {
                let mut by_system: HashMap<String, HashSet<String>> = HashMap::default();
                for (system, code) in v {
                    by_system.entry(system).or_default().insert(code);
                }
                (k, by_system)
            })
            .collect();
        Ok(Definitions {
            elements,
            by_path,
            nodes,
            leaf: Node::default(),
            value_sets,
            codes_only,
        })
    }

    pub fn element(&self, path: &str) -> Option<&ElementDef> {
        self.by_path.get(path).map(|&i| &self.elements[i])
    }

    pub fn is_resource_or_type(&self, name: &str) -> bool {
        self.by_path.contains_key(name)
    }

    fn node(&self, path: &str) -> Option<&Node> {
        self.nodes.get(path)
    }

    /// The element a JSON key names among the children of `node`, and its type (choice
    /// elements take the type from the key's suffix).
    fn resolve<'d>(&'d self, node: &'d Node, name: &str) -> Option<(&'d ElementDef, &'d str)> {
        if let Some(&i) = node.by_name.get(name) {
            let el = &self.elements[i];
            return Some((el, el.walk_type()));
        }
        for (base, i) in &node.choices {
            if let Some(suffix) = name.strip_prefix(base.as_str()) {
                let el = &self.elements[*i];
                if let Some(t) = el.types.iter().find(|t| capitalised_eq(t, suffix)) {
                    return Some((el, t.as_str()));
                }
            }
        }
        None
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

/// Validates one resource (any type, Bundles included) against base R4; `root` is the FHIRPath
/// prefix of its location (`Bundle.entry[3].resource` or the resource type).
pub fn validate_resource(defs: &Definitions, resource: &Value, root: &str) -> Vec<OutcomeIssue> {
    let mut v = Walker {
        defs,
        issues: Vec::new(),
        path: vec![Seg::Root(root.to_string())],
    };
    v.resource(resource);
    v.issues
}

/// One step of the FHIRPath of the node being validated. The path is kept as segments and
/// written out only when an issue is reported, so valid input costs no string building.
enum Seg<'v> {
    Root(String),
    Name(&'v str),
    Index(usize),
}

struct Walker<'d, 'v> {
    defs: &'d Definitions,
    issues: Vec<OutcomeIssue>,
    path: Vec<Seg<'v>>,
}

impl<'d, 'v> Walker<'d, 'v> {
    fn expr(&self) -> String {
        let mut out = String::new();
        for seg in &self.path {
            match seg {
                Seg::Root(r) => out.push_str(r),
                Seg::Name(n) => {
                    out.push('.');
                    out.push_str(n);
                }
                Seg::Index(i) => {
                    out.push('[');
                    out.push_str(&i.to_string());
                    out.push(']');
                }
            }
        }
        out
    }

    fn issue(&mut self, code: &'static str, detail: &str, msg: String) {
        let expression = self.expr();
        self.issues.push(OutcomeIssue {
            severity: "error",
            code,
            detail: detail.to_string(),
            diagnostics: msg,
            expression,
            location: None,
        });
    }

    /// Reports an issue at the child `name` of the current node.
    fn issue_at(&mut self, name: &'v str, code: &'static str, detail: &str, msg: String) {
        self.path.push(Seg::Name(name));
        self.issue(code, detail, msg);
        self.path.pop();
    }

    fn resource(&mut self, v: &'v Value) {
        let Some(obj) = v.as_object() else {
            self.issue(
                "structure",
                "structure",
                "A resource must be a JSON object.".into(),
            );
            return;
        };
        let Some(rt) = obj.get("resourceType").and_then(Value::as_str) else {
            self.issue(
                "required",
                "resourceType",
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
                "The resourceType is not an R4 resource type.".into(),
            );
            return;
        }
        self.object(obj, rt, true);
        let contained = matches!(self.path.iter().rev().nth(1), Some(Seg::Name("contained")));
        for (key, msg) in super::invariant::resource(rt, obj, contained) {
            self.issue("invariant", key, msg.to_string());
        }
    }

    /// Validates the members of `obj` against the children of definition path `def`.
    fn object(&mut self, obj: &'v Map<String, Value>, def: &str, is_resource: bool) {
        let defs = self.defs;
        let node = defs.node(def).unwrap_or(&defs.leaf);
        for (key, value) in obj {
            if is_resource && key == "resourceType" {
                continue;
            }
            let (name, is_ext) = match key.strip_prefix('_') {
                Some(n) => (n, true),
                None => (key.as_str(), false),
            };
            let Some((el, ty)) = defs.resolve(node, name) else {
                self.issue_at(
                    key,
                    "structure",
                    "unknown-element",
                    format!("Unknown element '{key}' in {def}."),
                );
                continue;
            };
            self.path.push(Seg::Name(name));
            if is_ext {
                // Primitive extensions: id and extension only.
                self.each(value, el, |w, item| {
                    if let Some(o) = item.as_object() {
                        w.object(o, "Element", false);
                    } else if !item.is_null() {
                        w.issue(
                            "structure",
                            "structure",
                            "A primitive's extension holder must be an object.".into(),
                        );
                    }
                });
            } else {
                // Resource.id is typed System.String in the definitions; its format is `id`.
                let ty: &str = if is_resource && key == "id" { "id" } else { ty };
                self.each(value, el, |w, item| w.value(item, el, ty));
            }
            self.path.pop();
        }
        // Required children: a value or its primitive extension holder must be there.
        for &i in &node.required {
            let el = &defs.elements[i];
            let name = el.name();
            let present = match name.strip_suffix("[x]") {
                Some(base) => obj.keys().any(|k| {
                    k.trim_start_matches('_').starts_with(base)
                        && k.trim_start_matches('_').len() > base.len()
                }),
                None => obj.contains_key(name) || obj.contains_key(&el.extension_key),
            };
            if !present {
                let short = name.trim_end_matches("[x]").to_string();
                self.path.push(Seg::Root(format!(".{short}")));
                self.issue(
                    "required",
                    "cardinality",
                    format!("{} is required (min {}).", el.path, el.min),
                );
                self.path.pop();
            }
        }
    }

    /// Applies cardinality rules and calls `f` on each item.
    fn each(&mut self, value: &'v Value, el: &ElementDef, mut f: impl FnMut(&mut Self, &'v Value)) {
        let repeating = el.max != Some(1);
        match value {
            Value::Array(items) if repeating => {
                if items.is_empty() {
                    self.issue("structure", "structure", "Arrays must not be empty.".into());
                }
                if let Some(max) = el.max {
                    if items.len() > max as usize {
                        self.issue(
                            "structure",
                            "cardinality",
                            format!("{} allows at most {max} items.", el.path),
                        );
                    }
                }
                for (i, item) in items.iter().enumerate() {
                    self.path.push(Seg::Index(i));
                    f(self, item);
                    self.path.pop();
                }
            }
            Value::Array(_) => self.issue(
                "structure",
                "cardinality",
                format!("{} allows at most 1 value; an array was given.", el.path),
            ),
            _ if repeating => self.issue(
                "structure",
                "structure",
                format!("{} repeats and must be a JSON array.", el.path),
            ),
            other => f(self, other),
        }
    }

    fn value(&mut self, v: &'v Value, el: &ElementDef, ty: &str) {
        if let Some(r) = ty.strip_prefix('#') {
            match v.as_object() {
                Some(o) => self.object(o, r, false),
                None => self.issue(
                    "structure",
                    "structure",
                    format!("{} must be an object.", el.path),
                ),
            }
            return;
        }
        if is_primitive(ty) {
            let kind = json_kind(ty);
            let ok = match kind {
                Json::Bool => v.is_boolean(),
                Json::Number => v.is_number(),
                Json::String => v.as_str().is_some_and(|s| !s.trim().is_empty()),
            };
            if !ok {
                let what = match kind {
                    Json::Bool => "boolean",
                    Json::Number => "number",
                    Json::String => "string",
                };
                self.issue(
                    "value",
                    "primitive",
                    format!("{} must be a non-empty JSON {what} ({ty}).", el.path),
                );
                return;
            }
            if let Some(why) = super::primitive::check(ty, v) {
                self.issue("value", "format", format!("{}: {why}.", el.path));
                return;
            }
            if let Some((strength, vs)) = &el.binding {
                if strength == "required" && ty == "code" {
                    if let (Some(codes), Some(c)) = (self.defs.codes_only.get(vs), v.as_str()) {
                        if !codes.contains(c) {
                            self.issue(
                                "code-invalid",
                                "binding",
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
                format!("{} must be a JSON object ({ty}).", el.path),
            );
            return;
        };
        if ty == "Resource" {
            self.resource(v);
            return;
        }
        if matches!(ty, "BackboneElement" | "Element") && self.defs.node(&el.path).is_some() {
            self.object(obj, &el.path, false);
        } else {
            self.object(obj, ty, false);
        }
        let failures = super::invariant::element(obj)
            .into_iter()
            .chain(super::invariant::datatype(ty, obj));
        for (key, msg) in failures {
            self.issue("invariant", key, msg.to_string());
        }
        if let Some((strength, vs)) = &el.binding {
            if strength == "required" {
                self.binding(obj, ty, vs);
            }
        }
    }

    fn binding(&mut self, obj: &Map<String, Value>, ty: &str, vs: &str) {
        let Some(set) = self.defs.value_sets.get(vs) else {
            return;
        };
        let in_set = |system: Option<&str>, code: Option<&str>| match (system, code) {
            (Some(s), Some(k)) => set.get(s).is_some_and(|codes| codes.contains(k)),
            _ => false,
        };
        let ok = match ty {
            "Coding" => in_set(
                obj.get("system").and_then(Value::as_str),
                obj.get("code").and_then(Value::as_str),
            ),
            "CodeableConcept" => obj
                .get("coding")
                .and_then(Value::as_array)
                .is_some_and(|cs| {
                    cs.iter()
                        .any(|c| in_set(c["system"].as_str(), c["code"].as_str()))
                }),
            _ => true,
        };
        if !ok {
            self.issue(
                "code-invalid",
                "binding",
                format!("No coding is in the required ValueSet {vs}."),
            );
        }
    }
}

/// `t` with its first letter upper-cased equals `s`.
fn capitalised_eq(t: &str, s: &str) -> bool {
    t.len() == s.len()
        && !t.is_empty()
        && t.as_bytes()[0].to_ascii_uppercase() == s.as_bytes()[0]
        && t[1..] == s[1..]
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

//! Validation against Engraft's profiles (`profiles/`): the constraints of each
//! StructureDefinition's differential, compiled once and applied on top of the base R4
//! validation (which covers everything the differential does not change).
//!
//! Supported constraint kinds: cardinality (min/max) at any depth, fixed[x], pattern[x],
//! bindings (required: error; extensible/preferred: warning), narrowed choice types, slicing
//! (value, pattern, type and profile discriminators; open and closed rules; per-slice
//! cardinality; the constraints of each slice's items), the value type and binding of
//! Engraft's extensions, Engraft's invariants (`constraint` keys evaluated by
//! [`super::invariant::profile`]) and reference target types (`targetProfile`) for references
//! resolved inside a Bundle. Not checked: `ordered` slicing and `exists` discriminators.

use std::collections::HashMap;
use std::rc::Rc;

use serde_json::{Map, Value};

use crate::fhir::OutcomeIssue;
use crate::terminology::Terminology;

/// One constraint of a profile, at a dotted element path below the resource (or, inside a
/// slice, below the sliced item).
#[derive(Debug, Clone)]
struct Rule {
    /// Element id as in the differential (`Observation.extension:dueTo`).
    id: String,
    /// Path segments (`["valueQuantity", "system"]`).
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
    /// An Engraft invariant (see `invariant::profile`): key, severity, human text.
    Invariant {
        key: String,
        error: bool,
        human: String,
    },
    /// The element at `path` is sliced.
    Slicing(Slicing),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Discriminator {
    Value(Vec<String>),
    Pattern(Vec<String>),
    /// `None` for `$this`.
    Type(Option<Vec<String>>),
    Profile(Option<Vec<String>>),
    /// `exists` and unknown kinds: every item matches.
    Other,
}

#[derive(Debug, Clone)]
struct Slicing {
    discriminators: Vec<Discriminator>,
    closed: bool,
    slices: Vec<Slice>,
}

#[derive(Debug, Clone, Default)]
struct Slice {
    id: String,
    min: u32,
    max: Option<u32>,
    /// Declared types (code, profiles) by relative path (`$this` for the slice itself).
    types: HashMap<String, (Vec<String>, Vec<String>)>,
    /// Constraints on the items of this slice, relative to the item.
    rules: Vec<Rule>,
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

/// One segment of an element id: `extension:dueTo` is ("extension", Some("dueTo")).
#[derive(Debug, Clone)]
struct Seg {
    name: String,
    slice: Option<String>,
}

fn segments(id: &str) -> Vec<Seg> {
    id.split('.')
        .skip(1)
        .map(|s| match s.split_once(':') {
            Some((n, sl)) => Seg {
                name: n.to_string(),
                slice: Some(sl.to_string()),
            },
            None => Seg {
                name: s.to_string(),
                slice: None,
            },
        })
        .collect()
}

fn compile(sd: &Value) -> Option<Profile> {
    let url = sd["url"].as_str()?.to_string();
    let resource_type = sd["type"].as_str()?.to_string();
    let mut extension_value = None;
    let mut elements = Vec::new();
    for el in sd["differential"]["element"].as_array()? {
        let id = el["id"].as_str()?;
        let segs = segments(id);
        if segs.is_empty() {
            continue;
        }
        if resource_type == "Extension" {
            if id == "Extension.value[x]" {
                let types = type_codes(el).0;
                let vs = el["binding"]["valueSet"]
                    .as_str()
                    .filter(|_| el["binding"]["strength"] == "required")
                    .map(str::to_string);
                extension_value = Some((types, vs));
            }
            continue;
        }
        elements.push((id.to_string(), segs, el));
    }
    Some(Profile {
        url,
        resource_type,
        rules: compile_rules(&elements),
        extension_value,
    })
}

/// (type codes, profiles) of an element's `type`.
fn type_codes(el: &Value) -> (Vec<String>, Vec<String>) {
    let types = el["type"].as_array().map(Vec::as_slice).unwrap_or_default();
    let codes = types
        .iter()
        .filter_map(|t| t["code"].as_str().map(str::to_string))
        .collect();
    let profiles = types
        .iter()
        .flat_map(|t| t["profile"].as_array().into_iter().flatten())
        .filter_map(|p| p.as_str().map(str::to_string))
        .collect();
    (codes, profiles)
}

type Element<'a> = (String, Vec<Seg>, &'a Value);

/// Compiles differential elements (ids already split, relative to the resource or to a slice
/// item) into rules. Elements inside a slice are compiled recursively into that slice.
fn compile_rules(elements: &[Element<'_>]) -> Vec<Rule> {
    let mut rules = Vec::new();
    // Slicings in order of appearance: (sliced path, slicing element, [(slice name, element,
    // children)]).
    type Group<'a> = (
        Vec<String>,
        Option<&'a Value>,
        Vec<(String, Option<Element<'a>>, Vec<Element<'a>>)>,
    );
    let mut groups: Vec<Group<'_>> = Vec::new();
    let group_of = |groups: &mut Vec<Group<'_>>, path: &[String]| -> usize {
        match groups.iter().position(|g| g.0 == path) {
            Some(i) => i,
            None => {
                groups.push((path.to_vec(), None, Vec::new()));
                groups.len() - 1
            }
        }
    };
    for (id, segs, el) in elements {
        let names: Vec<String> = segs.iter().map(|s| s.name.clone()).collect();
        match segs.iter().position(|s| s.slice.is_some()) {
            None => {
                if el.get("slicing").is_some() {
                    let g = group_of(&mut groups, &names);
                    groups[g].1 = Some(el);
                }
                plain_rules(id, &names, el, &mut rules);
            }
            Some(k) => {
                let slice = segs[k].slice.clone().unwrap_or_default();
                let g = group_of(&mut groups, &names[..=k]);
                let slices = &mut groups[g].2;
                let at = match slices.iter().position(|s| s.0 == slice) {
                    Some(i) => i,
                    None => {
                        slices.push((slice.clone(), None, Vec::new()));
                        slices.len() - 1
                    }
                };
                if k + 1 == segs.len() {
                    slices[at].1 = Some((id.clone(), Vec::new(), *el));
                } else {
                    slices[at].2.push((id.clone(), segs[k + 1..].to_vec(), *el));
                }
            }
        }
    }
    for (path, slicing_el, slices) in groups {
        let is_extension = path
            .last()
            .is_some_and(|l| l == "extension" || l == "modifierExtension");
        let (discriminators, closed) = match slicing_el {
            Some(el) => (
                el["slicing"]["discriminator"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(discriminator)
                    .collect(),
                el["slicing"]["rules"] == "closed",
            ),
            // Extensions are sliced by url in base R4.
            None if is_extension => (vec![Discriminator::Value(vec!["url".into()])], false),
            None => (vec![Discriminator::Other], false),
        };
        let slices = slices
            .into_iter()
            .map(|(_, own, children)| {
                let mut slice = Slice::default();
                if let Some((id, _, el)) = own {
                    slice.id = id;
                    slice.min = el["min"].as_u64().unwrap_or(0) as u32;
                    slice.max = el["max"].as_str().and_then(|m| m.parse().ok());
                    slice.types.insert("$this".into(), type_codes(el));
                }
                for (_, segs, el) in &children {
                    if el.get("type").is_some() {
                        let rel: Vec<&str> = segs.iter().map(|s| s.name.as_str()).collect();
                        slice.types.insert(rel.join("."), type_codes(el));
                    }
                }
                slice.rules = compile_rules(&children);
                slice
            })
            .collect();
        rules.push(Rule {
            id: path.join("."),
            path,
            kind: Kind::Slicing(Slicing {
                discriminators,
                closed,
                slices,
            }),
        });
    }
    rules
}

fn discriminator(d: &Value) -> Discriminator {
    let path = d["path"].as_str().unwrap_or("$this");
    let segs = || path.split('.').map(str::to_string).collect::<Vec<_>>();
    let at = || (path != "$this").then(segs);
    match d["type"].as_str() {
        Some("value") => Discriminator::Value(segs()),
        Some("pattern") => Discriminator::Pattern(segs()),
        Some("type") => Discriminator::Type(at()),
        Some("profile") => Discriminator::Profile(at()),
        _ => Discriminator::Other,
    }
}

/// The non-slicing rules of one element: cardinality, fixed/pattern, binding, types, targets.
fn plain_rules(id: &str, path: &[String], el: &Value, rules: &mut Vec<Rule>) {
    let mut push = |kind| {
        rules.push(Rule {
            id: id.to_string(),
            path: path.to_vec(),
            kind,
        })
    };
    if let Some(min) = el["min"].as_u64() {
        push(Kind::Min(min as u32));
    }
    if let Some(max) = el["max"].as_str().and_then(|m| m.parse::<u32>().ok()) {
        push(Kind::Max(max));
    }
    if let Some(obj) = el.as_object() {
        for (k, v) in obj {
            if k.starts_with("fixed") {
                push(Kind::Fixed(v.clone()));
            } else if k.starts_with("pattern") {
                push(Kind::Pattern(v.clone()));
            }
        }
    }
    if let (Some(strength), Some(vs)) = (
        el["binding"]["strength"].as_str(),
        el["binding"]["valueSet"].as_str(),
    ) {
        push(Kind::Binding {
            required: strength == "required",
            value_set: vs.to_string(),
        });
    }
    for c in el["constraint"].as_array().into_iter().flatten() {
        if let Some(key) = c["key"].as_str() {
            push(Kind::Invariant {
                key: key.to_string(),
                error: c["severity"] != "warning",
                human: c["human"].as_str().unwrap_or_default().to_string(),
            });
        }
    }
    if el["type"].is_array() {
        let (codes, _) = type_codes(el);
        if path.last().is_some_and(|p| p.ends_with("[x]")) {
            push(Kind::Types(codes));
        }
        let targets: Vec<String> = el["type"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|t| t["targetProfile"].as_array().into_iter().flatten())
            .filter_map(|p| p.as_str()?.rsplit('/').next().map(str::to_string))
            .collect();
        if !targets.is_empty() {
            push(Kind::Targets(targets));
        }
    }
}

/// A value found at a path, with its FHIRPath.
struct Node<'v> {
    value: &'v Value,
    expr: Expr<'v>,
}

/// The FHIRPath of a node, kept as links to its parent's and written out only when an issue
/// names it: walking valid input builds no strings.
#[derive(Clone)]
struct Expr<'v>(Rc<Step<'v>>);

enum Step<'v> {
    Root(String),
    Key(Expr<'v>, &'v str),
    Item(Expr<'v>, &'v str, usize),
}

impl<'v> Expr<'v> {
    fn root(path: &str) -> Self {
        Expr(Rc::new(Step::Root(path.to_string())))
    }

    fn key(&self, key: &'v str) -> Self {
        Expr(Rc::new(Step::Key(self.clone(), key)))
    }

    fn item(&self, key: &'v str, index: usize) -> Self {
        Expr(Rc::new(Step::Item(self.clone(), key, index)))
    }

    /// The JSON key of the last step (empty at the root).
    fn last_key(&self) -> &'v str {
        match &*self.0 {
            Step::Root(_) => "",
            Step::Key(_, k) | Step::Item(_, k, _) => k,
        }
    }
}

impl std::fmt::Display for Expr<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &*self.0 {
            Step::Root(r) => f.write_str(r),
            Step::Key(parent, k) => write!(f, "{parent}.{k}"),
            Step::Item(parent, k, i) => write!(f, "{parent}.{k}[{i}]"),
        }
    }
}

/// Calls `f` with each JSON key of `obj` that element `seg` names (a choice `value[x]`
/// matches any `valueXxx`) and its value.
fn named<'v>(obj: &'v Map<String, Value>, seg: &str, mut f: impl FnMut(&'v str, &'v Value)) {
    match seg.strip_suffix("[x]") {
        Some(base) => {
            for (k, v) in obj {
                if k.len() > base.len()
                    && k.starts_with(base)
                    && k.as_bytes()[base.len()].is_ascii_uppercase()
                {
                    f(k, v);
                }
            }
        }
        None => {
            if let Some((k, v)) = obj.get_key_value(seg) {
                f(k, v);
            }
        }
    }
}

/// How many items element `seg` has in `obj`.
fn count(obj: &Map<String, Value>, seg: &str) -> u32 {
    let mut n = 0;
    named(obj, seg, |_, v| {
        n += v.as_array().map_or(1, Vec::len) as u32;
    });
    n
}

/// The children named `seg` of `obj`, whose FHIRPath is `expr`.
fn children<'v>(obj: &'v Map<String, Value>, seg: &str, expr: &Expr<'v>) -> Vec<Node<'v>> {
    let mut out = Vec::new();
    named(obj, seg, |key, v| match v {
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                out.push(Node {
                    value: item,
                    expr: expr.item(key, i),
                });
            }
        }
        other => out.push(Node {
            value: other,
            expr: expr.key(key),
        }),
    });
    out
}

/// The nodes at `path` below `root`, and the parents of the last segment.
fn select<'v>(
    root: &'v Value,
    root_expr: &Expr<'v>,
    path: &[String],
) -> (Vec<Node<'v>>, Vec<Node<'v>>) {
    let mut parents = vec![Node {
        value: root,
        expr: root_expr.clone(),
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
    validate_at(
        profiles,
        term,
        profile,
        resource,
        &Expr::root(root),
        resolve,
    )
}

/// [`validate`], below a FHIRPath already built (a resource inside a slice).
fn validate_at<'v>(
    profiles: &Profiles,
    term: &Terminology,
    profile: &Profile,
    resource: &'v Value,
    root: &Expr<'v>,
    resolve: &Resolver<'_>,
) -> Vec<OutcomeIssue> {
    let name = profile.url.rsplit('/').next().unwrap_or(&profile.url);
    let ctx = Ctx {
        profiles,
        term,
        resolve,
        name,
    };
    let mut issues = Vec::new();
    ctx.apply(&profile.rules, resource, root, &mut issues);
    extensions(profiles, term, resource, root, &mut issues);
    issues
}

/// Whether `resource` conforms to `profile` (profile rules only; base R4 is checked apart).
fn conforms<'v>(
    ctx: &Ctx<'_, '_>,
    profile: &Profile,
    resource: &'v Value,
    root: &Expr<'v>,
) -> bool {
    resource["resourceType"] == profile.resource_type.as_str()
        && !validate_at(ctx.profiles, ctx.term, profile, resource, root, ctx.resolve)
            .iter()
            .any(|i| i.severity == "error")
}

fn issue(
    issues: &mut Vec<OutcomeIssue>,
    severity: &'static str,
    code: &'static str,
    detail: &str,
    expression: String,
    diagnostics: String,
) {
    issues.push(OutcomeIssue {
        severity,
        code,
        detail: detail.to_string(),
        diagnostics,
        expression,
        location: None,
    });
}

struct Ctx<'a, 'r> {
    profiles: &'a Profiles,
    term: &'a Terminology,
    resolve: &'a Resolver<'r>,
    /// The profile's short name, for messages.
    name: &'a str,
}

impl Ctx<'_, '_> {
    /// Applies `rules` to `value` (a resource, or a slice item), whose FHIRPath is `root`.
    fn apply<'v>(
        &self,
        rules: &[Rule],
        value: &'v Value,
        root: &Expr<'v>,
        issues: &mut Vec<OutcomeIssue>,
    ) {
        let name = self.name;
        // An element's rules (cardinality, fixed value, binding, invariants...) come one after
        // another with the same path: its nodes are selected once for all of them.
        let mut selected: Option<(&[String], Vec<Node<'v>>, Vec<Node<'v>>)> = None;
        for rule in rules {
            if !matches!(&selected, Some((path, _, _)) if *path == rule.path.as_slice()) {
                let (nodes, parents) = select(value, root, &rule.path);
                selected = Some((&rule.path, nodes, parents));
            }
            let Some((_, nodes, parents)) = &selected else {
                continue;
            };
            let leaf = rule.path.last().map(String::as_str).unwrap_or("");
            match &rule.kind {
                Kind::Min(min) => {
                    for p in parents {
                        let Some(obj) = p.value.as_object() else {
                            continue;
                        };
                        let n = count(obj, leaf);
                        if n < *min {
                            issue(
                                issues,
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
                    for p in parents {
                        let Some(obj) = p.value.as_object() else {
                            continue;
                        };
                        let n = count(obj, leaf);
                        if n > *max {
                            issue(
                                issues,
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
                    for n in nodes {
                        if n.value != f {
                            issue(
                                issues,
                                "error",
                                "value",
                                "profile-fixed",
                                n.expr.to_string(),
                                format!("{} must have the fixed value of profile {name}.", rule.id),
                            );
                        }
                    }
                }
                Kind::Pattern(pat) => {
                    for n in nodes {
                        if !matches_pattern(n.value, pat) {
                            issue(
                                issues,
                                "error",
                                "value",
                                "profile-pattern",
                                n.expr.to_string(),
                                format!(
                                    "{} does not match the pattern of profile {name}.",
                                    rule.id
                                ),
                            );
                        }
                    }
                }
                Kind::Binding {
                    required,
                    value_set,
                } => {
                    for n in nodes {
                        if !in_value_set(self.term, value_set, n.value) {
                            let (sev, detail) = if *required {
                                ("error", "profile-binding")
                            } else {
                                ("warning", "profile-binding-extensible")
                            };
                            issue(
                                issues,
                                sev,
                                "code-invalid",
                                detail,
                                n.expr.to_string(),
                                format!(
                                    "{} is not in ValueSet {value_set} (profile {name}).",
                                    rule.id
                                ),
                            );
                        }
                    }
                }
                Kind::Types(types) => {
                    for p in parents {
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
                                    issues,
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
                    for n in nodes {
                        let Some(r) = n.value.get("reference").and_then(Value::as_str) else {
                            continue;
                        };
                        let Some(t) = (self.resolve)(r) else { continue };
                        if !targets.iter().any(|x| x == t || x == "Resource") {
                            issue(
                                issues,
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
                Kind::Invariant { key, error, human } => {
                    for n in nodes {
                        if super::invariant::profile(key, n.value) == Some(false) {
                            issue(
                                issues,
                                if *error { "error" } else { "warning" },
                                "invariant",
                                key,
                                n.expr.to_string(),
                                format!("{human} ({key}, profile {name})."),
                            );
                        }
                    }
                }
                Kind::Slicing(slicing) => {
                    for p in parents {
                        if let Some(obj) = p.value.as_object() {
                            let items = children(obj, leaf, &p.expr);
                            self.slicing(slicing, &items, &p.expr, leaf, issues);
                        }
                    }
                }
            }
        }
    }

    /// Sorts the items of one sliced element into slices, then checks closed rules, each
    /// slice's cardinality and the constraints of each item's slice.
    fn slicing<'v>(
        &self,
        slicing: &Slicing,
        items: &[Node<'v>],
        parent: &Expr<'v>,
        leaf: &str,
        issues: &mut Vec<OutcomeIssue>,
    ) {
        let name = self.name;
        let mut counts = vec![0u32; slicing.slices.len()];
        for item in items {
            match slicing
                .slices
                .iter()
                .position(|s| self.in_slice(item, s, &slicing.discriminators))
            {
                Some(i) => {
                    counts[i] += 1;
                    self.apply(&slicing.slices[i].rules, item.value, &item.expr, issues);
                }
                None if slicing.closed => issue(
                    issues,
                    "error",
                    "structure",
                    "profile-slice-closed",
                    item.expr.to_string(),
                    format!("The slicing of {leaf} is closed and this item is in none of its slices (profile {name})."),
                ),
                None => {}
            }
        }
        for (slice, n) in slicing.slices.iter().zip(counts) {
            if n < slice.min || slice.max.is_some_and(|m| n > m) {
                issue(
                    issues,
                    "error",
                    "structure",
                    "profile-slice",
                    format!("{parent}.{}", leaf.trim_end_matches("[x]")),
                    format!(
                        "Slice {} needs {}..{} items, found {n} (profile {name}).",
                        slice.id,
                        slice.min,
                        slice.max.map(|m| m.to_string()).unwrap_or("*".into())
                    ),
                );
            }
        }
    }

    /// Whether `item` belongs to `slice` under every discriminator.
    fn in_slice(&self, item: &Node<'_>, slice: &Slice, discriminators: &[Discriminator]) -> bool {
        discriminators.iter().all(|d| match d {
            Discriminator::Value(path) | Discriminator::Pattern(path) => {
                let Some(expected) = slice_value(slice, path) else {
                    return false;
                };
                let (nodes, _) = select(item.value, &item.expr, path);
                nodes.iter().any(|n| match &expected {
                    Expected::Exact(v) => n.value == v,
                    Expected::Pattern(p) => matches_pattern(n.value, p),
                })
            }
            Discriminator::Type(path) => {
                let key = path.as_ref().map(|p| p.join(".")).unwrap_or("$this".into());
                let Some((codes, _)) = slice.types.get(&key) else {
                    return false;
                };
                self.at(item, path.as_deref()).iter().any(|(n, k)| {
                    let actual = n.value["resourceType"].as_str().or_else(|| choice_type(k));
                    actual.is_some_and(|t| codes.iter().any(|c| c.eq_ignore_ascii_case(t)))
                })
            }
            Discriminator::Profile(path) => {
                let key = path.as_ref().map(|p| p.join(".")).unwrap_or("$this".into());
                let Some((_, urls)) = slice.types.get(&key) else {
                    return false;
                };
                self.at(item, path.as_deref()).iter().any(|(n, _)| {
                    urls.iter().any(|u| {
                        self.profiles
                            .get(u)
                            .is_some_and(|p| conforms(self, p, n.value, &n.expr))
                    })
                })
            }
            Discriminator::Other => true,
        })
    }

    /// The nodes at `path` below `item` (the item itself for `$this`), with their JSON keys.
    fn at<'v>(&self, item: &Node<'v>, path: Option<&[String]>) -> Vec<(Node<'v>, &'v str)> {
        match path {
            None => vec![(
                Node {
                    value: item.value,
                    expr: item.expr.clone(),
                },
                item.expr.last_key(),
            )],
            Some(p) => select(item.value, &item.expr, p)
                .0
                .into_iter()
                .map(|n| {
                    let k = n.expr.last_key();
                    (n, k)
                })
                .collect(),
        }
    }
}

/// The type named by a choice element's key (`valueQuantity` is `Quantity`).
fn choice_type(key: &str) -> Option<&str> {
    let at = key.find(|c: char| c.is_ascii_uppercase())?;
    Some(&key[at..])
}

enum Expected {
    Exact(Value),
    Pattern(Value),
}

/// The value a slice fixes at `path`: a fixed[x] or pattern[x] of its element there, or for
/// an extension slice (`url`), the canonical URL of its extension definition.
fn slice_value(slice: &Slice, path: &[String]) -> Option<Expected> {
    for r in &slice.rules {
        if r.path == path {
            match &r.kind {
                Kind::Fixed(v) => return Some(Expected::Exact(v.clone())),
                Kind::Pattern(v) => return Some(Expected::Pattern(v.clone())),
                _ => {}
            }
        }
    }
    if path == ["url"] {
        let (_, profiles) = slice.types.get("$this")?;
        return profiles
            .first()
            .map(|u| Expected::Exact(Value::String(u.clone())));
    }
    None
}

/// Engraft's own extensions anywhere in the resource: value type and required binding.
fn extensions<'v>(
    profiles: &Profiles,
    term: &Terminology,
    v: &'v Value,
    expr: &Expr<'v>,
    issues: &mut Vec<OutcomeIssue>,
) {
    match v {
        Value::Object(obj) => {
            for (k, child) in obj {
                if k == "extension" || k == "modifierExtension" {
                    for (i, e) in child.as_array().into_iter().flatten().enumerate() {
                        let e_expr = expr.item(k, i);
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
                                    expression: e_expr.to_string(),
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
                                extensions(profiles, term, item, &expr.item(k, i), issues);
                            }
                        }
                        Value::Object(_) => extensions(
                            profiles,
                            term,
                            child,
                            &expr.key(k.trim_start_matches('_')),
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
    fn every_declared_invariant_has_an_implementation() {
        fn walk(rules: &[Rule], keys: &mut Vec<String>) {
            for r in rules {
                match &r.kind {
                    Kind::Invariant { key, .. } => keys.push(key.clone()),
                    Kind::Slicing(s) => s.slices.iter().for_each(|s| walk(&s.rules, keys)),
                    _ => {}
                }
            }
        }
        let mut keys = Vec::new();
        for p in Profiles::bundled().by_url.values() {
            walk(&p.rules, &mut keys);
        }
        assert!(keys.contains(&"eng-1".to_string()) && keys.contains(&"eng-2".to_string()));
        for k in keys {
            assert!(
                super::super::invariant::profile(&k, &Value::Null).is_some(),
                "{k} is declared but not implemented"
            );
        }
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

//! Reading CodeSystem, ValueSet and ConceptMap JSON into the indexes of [`Terminology`].

use foldhash::HashMap;

use serde_json::Value;

use super::{CodeSystem, Concept, ConceptMap, Property, Target, Terminology, ValueSet};

#[derive(Debug, thiserror::Error)]
pub enum TerminologyError {
    #[error("{file}: not valid JSON: {source}")]
    Json {
        file: String,
        source: serde_json::Error,
    },
    #[error("{file}: {what}")]
    Invalid { file: String, what: String },
}

impl Terminology {
    /// Builds the indexes from (file name, JSON text) pairs; resources other than CodeSystem,
    /// ValueSet and ConceptMap are skipped.
    pub fn from_sources<'a>(
        files: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, TerminologyError> {
        let mut t = Terminology::default();
        let mut pending_vs = Vec::new();
        for (file, text) in files {
            let v: Value = serde_json::from_str(text).map_err(|source| TerminologyError::Json {
                file: file.to_string(),
                source,
            })?;
            let invalid = |what: &str| TerminologyError::Invalid {
                file: file.to_string(),
                what: what.to_string(),
            };
            let url = || {
                v["url"]
                    .as_str()
                    .map(str::to_string)
                    .ok_or_else(|| invalid("has no url"))
            };
            match v["resourceType"].as_str() {
                Some("CodeSystem") => {
                    let url = url()?;
                    let mut concepts = HashMap::default();
                    if let Some(list) = v["concept"].as_array() {
                        read_concepts(list, None, &mut concepts);
                    }
                    if let Some(id) = url.strip_prefix(&format!("{}/CodeSystem/", super::BASE)) {
                        t.ids.insert(id.to_string(), url.clone());
                    }
                    t.code_systems
                        .insert(url.clone(), CodeSystem { url, concepts });
                }
                Some("ValueSet") => pending_vs.push((url()?, v)),
                Some("ConceptMap") => {
                    // Engraft's maps are looked up by id on the hot path.
                    let url = url()?;
                    let prefix = format!("{}/ConceptMap/", super::BASE);
                    let key = url.strip_prefix(&prefix).map(str::to_string).unwrap_or(url);
                    t.concept_maps.insert(key, read_concept_map(&v));
                }
                _ => {}
            }
        }
        // ValueSets after all CodeSystems, so whole-system includes can be enumerated.
        for (url, v) in pending_vs {
            let mut codes = Vec::new();
            for inc in v["compose"]["include"].as_array().into_iter().flatten() {
                let Some(system) = inc["system"].as_str() else {
                    continue;
                };
                match inc["concept"].as_array() {
                    Some(list) => codes.extend(
                        list.iter()
                            .filter_map(|c| c["code"].as_str())
                            .map(|c| (system.to_string(), c.to_string())),
                    ),
                    None => {
                        if let Some(cs) = t.code_systems.get(system) {
                            let mut all: Vec<_> = cs.concepts.keys().cloned().collect();
                            all.sort();
                            codes.extend(all.into_iter().map(|c| (system.to_string(), c)));
                        }
                    }
                }
            }
            if let Some(id) = url.strip_prefix(&format!("{}/ValueSet/", super::BASE)) {
                t.vs_ids.insert(id.to_string(), url.clone());
            }
            t.value_sets.insert(url.clone(), ValueSet { url, codes });
        }
        Ok(t)
    }
}

fn read_concepts(list: &[Value], parent: Option<&str>, out: &mut HashMap<String, Concept>) {
    for c in list {
        let Some(code) = c["code"].as_str() else {
            continue;
        };
        let mut properties = HashMap::default();
        for p in c["property"].as_array().into_iter().flatten() {
            let Some(name) = p["code"].as_str() else {
                continue;
            };
            let value = if let Some(d) = p.get("valueDecimal").and_then(Value::as_f64) {
                Property::Decimal(d)
            } else if let Some(i) = p.get("valueInteger").and_then(Value::as_i64) {
                Property::Integer(i)
            } else if let Some(b) = p.get("valueBoolean").and_then(Value::as_bool) {
                Property::Boolean(b)
            } else if let Some(s) = p
                .get("valueString")
                .or_else(|| p.get("valueCode"))
                .and_then(Value::as_str)
            {
                Property::Text(s.to_string())
            } else {
                continue;
            };
            properties.insert(name.to_string(), value);
        }
        out.insert(
            code.to_string(),
            Concept {
                display: c["display"].as_str().unwrap_or(code).to_string(),
                parent: parent.map(str::to_string),
                properties,
            },
        );
        if let Some(children) = c["concept"].as_array() {
            read_concepts(children, Some(code), out);
        }
    }
}

fn read_concept_map(v: &Value) -> ConceptMap {
    let mut by_source: HashMap<String, Vec<Target>> = HashMap::default();
    for g in v["group"].as_array().into_iter().flatten() {
        let system = g["target"].as_str().unwrap_or_default();
        let version = g["targetVersion"].as_str().map(str::to_string);
        for e in g["element"].as_array().into_iter().flatten() {
            let Some(source) = e["code"].as_str() else {
                continue;
            };
            for tg in e["target"].as_array().into_iter().flatten() {
                let Some(code) = tg["code"].as_str() else {
                    continue;
                };
                let depends_on = tg["dependsOn"]
                    .as_array()
                    .and_then(|d| d.first())
                    .and_then(|d| {
                        Some((
                            d["property"].as_str()?.to_string(),
                            d["value"].as_str()?.to_string(),
                        ))
                    });
                by_source
                    .entry(source.to_string())
                    .or_default()
                    .push(Target {
                        system: system.to_string(),
                        version: version.clone(),
                        code: code.to_string(),
                        display: tg["display"].as_str().map(str::to_string),
                        depends_on,
                        equivalence: tg["equivalence"]
                            .as_str()
                            .unwrap_or("equivalent")
                            .to_string(),
                    });
            }
        }
    }
    ConceptMap { by_source }
}

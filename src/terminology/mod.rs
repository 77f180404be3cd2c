//! Engraft's terminology: the CodeSystems, ValueSets and ConceptMaps of `profiles/`, loaded
//! once and indexed. Mapping and checks read codes, displays, properties and translations
//! from here, so code tables live as FHIR resources and not as match arms in the code.

mod load;

use foldhash::HashMap;

pub use load::TerminologyError;

/// Canonical base of everything Engraft defines.
pub const BASE: &str = "https://engraft.dev/fhir";
pub const SNOMED: &str = "http://snomed.info/sct";
pub const LOINC: &str = "http://loinc.org";
pub const ICD10CM: &str = "http://hl7.org/fhir/sid/icd-10-cm";
pub const ICD10: &str = "http://hl7.org/fhir/sid/icd-10";
pub const RXNORM: &str = "http://www.nlm.nih.gov/research/umls/rxnorm";
pub const UCUM: &str = "http://unitsofmeasure.org";

/// The URL of one of Engraft's CodeSystems by its id (`engraft-disease`).
pub fn cs(id: &str) -> String {
    format!("{BASE}/CodeSystem/{id}")
}

/// A property value of a concept.
#[derive(Debug, Clone, PartialEq)]
pub enum Property {
    Decimal(f64),
    Integer(i64),
    Boolean(bool),
    Text(String),
}

#[derive(Debug, Clone)]
pub struct Concept {
    pub display: String,
    pub parent: Option<String>,
    pub properties: HashMap<String, Property>,
}

impl Concept {
    pub fn decimal(&self, name: &str) -> Option<f64> {
        match self.properties.get(name)? {
            Property::Decimal(v) => Some(*v),
            Property::Integer(v) => Some(*v as f64),
            _ => None,
        }
    }
    pub fn integer(&self, name: &str) -> Option<i64> {
        match self.properties.get(name)? {
            Property::Integer(v) => Some(*v),
            _ => None,
        }
    }
    pub fn boolean(&self, name: &str) -> Option<bool> {
        match self.properties.get(name)? {
            Property::Boolean(v) => Some(*v),
            _ => None,
        }
    }
    pub fn text(&self, name: &str) -> Option<&str> {
        match self.properties.get(name)? {
            Property::Text(v) => Some(v),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct CodeSystem {
    pub url: String,
    pub concepts: HashMap<String, Concept>,
}

/// One target of a ConceptMap translation.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub system: String,
    pub version: Option<String>,
    pub code: String,
    pub display: Option<String>,
    /// (property, value) this target depends on, e.g. ("disease", "rheumatoid-arthritis").
    pub depends_on: Option<(String, String)>,
    /// The ConceptMap's equivalence (`equivalent`, `relatedto`...).
    pub equivalence: String,
}

#[derive(Debug, Clone, Default)]
pub struct ConceptMap {
    pub by_source: HashMap<String, Vec<Target>>,
}

/// An enumerated ValueSet: the (system, code) pairs it contains.
#[derive(Debug, Clone, Default)]
pub struct ValueSet {
    pub url: String,
    pub codes: Vec<(String, String)>,
}

/// All loaded terminology, indexed by canonical URL.
#[derive(Debug, Clone, Default)]
pub struct Terminology {
    code_systems: HashMap<String, CodeSystem>,
    value_sets: HashMap<String, ValueSet>,
    concept_maps: HashMap<String, ConceptMap>,
    /// Ids of Engraft's own resources (`engraft-disease`) to their canonical URLs, so hot
    /// lookups by id allocate nothing.
    ids: HashMap<String, String>,
    vs_ids: HashMap<String, String>,
}

impl Terminology {
    /// The terminology bundled into the binary from `profiles/` at build time.
    pub fn bundled() -> &'static Terminology {
        static BUNDLED: std::sync::OnceLock<Terminology> = std::sync::OnceLock::new();
        BUNDLED.get_or_init(|| {
            Terminology::from_sources(crate::profiles::bundled_files())
                .expect("bundled profiles are checked by the test suite")
        })
    }

    pub fn code_system(&self, url: &str) -> Option<&CodeSystem> {
        self.code_systems.get(url)
    }

    /// The canonical URL of Engraft's CodeSystem, ValueSet or ConceptMap `id` (CodeSystem
    /// first).
    pub fn url_of(&self, id: &str) -> Option<&str> {
        self.ids.get(id).map(String::as_str)
    }

    fn local_system(&self, id: &str) -> Option<&CodeSystem> {
        self.code_systems.get(self.ids.get(id)?)
    }

    /// The concept `code` of Engraft CodeSystem `id`.
    pub fn concept(&self, id: &str, code: &str) -> Option<&Concept> {
        self.local_system(id)?.concepts.get(code)
    }

    /// Whether `code` is in Engraft CodeSystem `id`.
    pub fn has(&self, id: &str, code: &str) -> bool {
        self.concept(id, code).is_some()
    }

    /// Display of a code in any loaded CodeSystem.
    pub fn display(&self, system: &str, code: &str) -> Option<&str> {
        self.code_systems
            .get(system)?
            .concepts
            .get(code)
            .map(|c| c.display.as_str())
    }

    /// Whether `code` equals `ancestor` or descends from it in CodeSystem `id`.
    pub fn is_a(&self, id: &str, code: &str, ancestor: &str) -> bool {
        let Some(system) = self.local_system(id) else {
            return false;
        };
        let mut cur = Some(code);
        while let Some(c) = cur {
            if c == ancestor {
                return true;
            }
            cur = system.concepts.get(c).and_then(|k| k.parent.as_deref());
        }
        false
    }

    pub fn value_set(&self, url: &str) -> Option<&ValueSet> {
        self.value_sets.get(url)
    }

    /// Whether Engraft ValueSet `id` contains `code` (in any of its systems).
    pub fn in_value_set(&self, id: &str, code: &str) -> bool {
        self.vs_ids
            .get(id)
            .and_then(|url| self.value_sets.get(url))
            .is_some_and(|vs| vs.codes.iter().any(|(_, c)| c == code))
    }

    /// Translates `source` through Engraft ConceptMap `id`. Targets with a `dependsOn` are kept
    /// only when `context` has that property with that value.
    pub fn translate<'a>(
        &'a self,
        id: &str,
        source: &str,
        context: &'a [(&'a str, &'a str)],
    ) -> impl Iterator<Item = &'a Target> + 'a {
        self.concept_maps
            .get(id)
            .and_then(|m| m.by_source.get(source))
            .into_iter()
            .flatten()
            .filter(move |t| match &t.depends_on {
                None => true,
                Some((p, v)) => context.iter().any(|(cp, cv)| cp == p && cv == v),
            })
    }

    /// The first translation into `system`.
    pub fn translate_to<'a>(
        &'a self,
        id: &str,
        source: &str,
        system: &str,
        context: &'a [(&'a str, &'a str)],
    ) -> Option<&'a Target> {
        self.translate(id, source, context)
            .find(|t| t.system == system)
    }

    /// The source code of Engraft ConceptMap `id` that (`system`, `code`) translates back to:
    /// only `equivalent`/`equal` targets count, and when several sources share the target, the
    /// one all the others descend from in `source_system` (an Engraft CodeSystem id), or none
    /// when they are not one line (a guess is never made).
    pub fn reverse(&self, id: &str, source_system: &str, system: &str, code: &str) -> Option<&str> {
        let map = self.concept_maps.get(id)?;
        let mut sources: Vec<&str> = map
            .by_source
            .iter()
            .filter(|(_, ts)| {
                ts.iter().any(|t| {
                    t.system == system
                        && t.code == code
                        && matches!(t.equivalence.as_str(), "equivalent" | "equal")
                })
            })
            .map(|(s, _)| s.as_str())
            .collect();
        sources.sort_unstable();
        sources
            .iter()
            .find(|a| sources.iter().all(|b| self.is_a(source_system, b, a)))
            .copied()
    }

    /// Whether (`system`, `code`) is a target of Engraft ConceptMap `id`.
    pub fn is_target(&self, id: &str, system: &str, code: &str) -> bool {
        self.concept_maps.get(id).is_some_and(|m| {
            m.by_source
                .values()
                .flatten()
                .any(|t| t.system == system && t.code == code)
        })
    }

    /// Every (system, code) Engraft works with: the codes of its ValueSets and the targets of
    /// its ConceptMaps (the standard codes its local codes map to).
    pub fn known_codes(&self) -> std::collections::HashSet<(String, String)> {
        let mut out: std::collections::HashSet<(String, String)> = self
            .value_sets
            .values()
            .flat_map(|vs| vs.codes.iter().cloned())
            .collect();
        for m in self.concept_maps.values() {
            for t in m.by_source.values().flatten() {
                out.insert((t.system.clone(), t.code.clone()));
            }
        }
        out
    }

    /// Number of loaded CodeSystems, ValueSets and ConceptMaps.
    pub fn counts(&self) -> (usize, usize, usize) {
        (
            self.code_systems.len(),
            self.value_sets.len(),
            self.concept_maps.len(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_terminology_loads_and_translates() {
        let t = Terminology::bundled();
        assert!(t.has("engraft-disease", "rrms"));
        assert!(t.is_a("engraft-disease", "rrms", "multiple-sclerosis"));
        assert!(!t.is_a("engraft-disease", "sle", "multiple-sclerosis"));
        let sct = t
            .translate_to("engraft-disease-to-standard", "rrms", SNOMED, &[])
            .unwrap();
        assert_eq!(sct.code, "426373005");
        let cm = t
            .translate_to("engraft-disease-to-standard", "rrms", ICD10CM, &[])
            .unwrap();
        assert_eq!(
            (cm.code.as_str(), cm.version.as_deref()),
            ("G35.A", Some("2026"))
        );
    }

    #[test]
    fn reverse_translation_takes_equivalent_targets_and_the_common_ancestor_only() {
        let t = Terminology::bundled();
        let back = |map, src, sys, code| t.reverse(map, src, sys, code);
        let d = "engraft-disease-to-standard";
        assert_eq!(
            back(d, "engraft-disease", SNOMED, "426373005"),
            Some("rrms")
        );
        // multiple-sclerosis and aggressive-ms share a code: the ancestor is taken.
        assert_eq!(
            back(d, "engraft-disease", SNOMED, "24700007"),
            Some("multiple-sclerosis")
        );
        assert_eq!(
            back(d, "engraft-disease", ICD10CM, "M34.0"),
            Some("diffuse-cutaneous-ssc")
        );
        assert_eq!(back(d, "engraft-disease", SNOMED, "1"), None);
        let lab = "engraft-lab-to-code";
        assert_eq!(back(lab, "engraft-lab", LOINC, "751-8"), Some("anc"));
        // cdai maps to 75847-4 as `relatedto` only: no way back.
        let scale = "engraft-scale-to-code";
        assert_eq!(back(scale, "engraft-scale", LOINC, "75847-4"), None);
        assert_eq!(
            back(
                scale,
                "engraft-scale",
                &cs("engraft-observation"),
                "crohn-cdai"
            ),
            Some("crohn-cdai")
        );
    }

    #[test]
    fn depends_on_selects_the_disease_specific_cdai() {
        let t = Terminology::bundled();
        let ra: Vec<_> = t
            .translate(
                "engraft-scale-to-code",
                "cdai",
                &[("disease", "rheumatoid-arthritis")],
            )
            .map(|t| t.code.as_str())
            .collect();
        assert_eq!(ra, ["75847-4"]);
        let crohn: Vec<_> = t
            .translate(
                "engraft-scale-to-code",
                "cdai",
                &[("disease", "crohns-disease")],
            )
            .map(|t| t.code.as_str())
            .collect();
        assert_eq!(crohn, ["crohn-cdai"]);
        assert_eq!(t.translate("engraft-scale-to-code", "cdai", &[]).count(), 0);
    }

    #[test]
    fn every_scale_and_lab_test_has_an_observation_code() {
        let t = Terminology::bundled();
        for (cs_id, map) in [
            ("engraft-lab", "engraft-lab-to-code"),
            ("engraft-scale", "engraft-scale-to-code"),
        ] {
            for code in t.local_system(cs_id).unwrap().concepts.keys() {
                let ctx = [("disease", "rheumatoid-arthritis")];
                assert!(
                    t.translate(map, code, &ctx).next().is_some(),
                    "{cs_id} {code} has no code in {map}"
                );
            }
        }
    }

    #[test]
    fn scale_properties_are_read() {
        let t = Terminology::bundled();
        let edss = t.concept("engraft-scale", "edss").unwrap();
        assert_eq!(edss.decimal("max"), Some(10.0));
        assert_eq!(edss.text("excluded"), Some("0.5"));
        let d100 = t.concept("engraft-time-point", "D100").unwrap();
        assert_eq!(d100.integer("targetDay"), Some(100));
    }
}

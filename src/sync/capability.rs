//! What a destination supports, read from its CapabilityStatement (`GET [base]/metadata`) and
//! overridable in config: transactions, conditional update, and `If-Match` (versioned update).
//! Pure.

use std::collections::HashMap;

use serde_json::Value;

/// The destination's abilities that change how Engraft delivers.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct Support {
    /// `POST [base]` with a transaction Bundle.
    pub transactions: bool,
    /// Per resource type: conditional update (`PUT Type?identifier=`).
    pub conditional_update: HashMap<String, bool>,
    /// Per resource type: `If-Match` honoured on update (`versioning = versioned-update`).
    pub if_match: HashMap<String, bool>,
    /// Config overrides, applied to every type.
    pub conditional_override: Option<bool>,
    pub if_match_override: Option<bool>,
}

impl Support {
    /// What is assumed of a server whose CapabilityStatement cannot be read: transactions and
    /// conditional updates, no `If-Match`.
    pub fn assumed() -> Support {
        Support {
            transactions: true,
            conditional_override: Some(true),
            ..Support::default()
        }
    }

    pub fn conditional(&self, rtype: &str) -> bool {
        self.conditional_override
            .unwrap_or_else(|| self.conditional_update.get(rtype).copied().unwrap_or(false))
    }

    pub fn if_match(&self, rtype: &str) -> bool {
        self.if_match_override
            .unwrap_or_else(|| self.if_match.get(rtype).copied().unwrap_or(false))
    }
}

/// Reads a CapabilityStatement's server `rest` part.
pub fn detect(cs: &Value) -> Support {
    let rest = cs["rest"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["mode"] == "server"))
        .cloned()
        .unwrap_or(Value::Null);
    let has = |list: &Value, code: &str| {
        list.as_array()
            .is_some_and(|l| l.iter().any(|i| i["code"] == code))
    };
    let mut s = Support {
        transactions: has(&rest["interaction"], "transaction"),
        ..Support::default()
    };
    for r in rest["resource"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
    {
        let Some(t) = r["type"].as_str() else {
            continue;
        };
        s.conditional_update
            .insert(t.to_string(), r["conditionalUpdate"] == true);
        s.if_match
            .insert(t.to_string(), r["versioning"] == "versioned-update");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_transactions_conditional_update_and_versioned_update() {
        let cs = json!({"resourceType": "CapabilityStatement", "rest": [{"mode": "server",
        "interaction": [{"code": "transaction"}],
        "resource": [
            {"type": "Patient", "conditionalUpdate": true, "versioning": "versioned-update"},
            {"type": "Observation", "versioning": "versioned"}
        ]}]});
        let s = detect(&cs);
        assert!(s.transactions);
        assert!(s.conditional("Patient") && s.if_match("Patient"));
        assert!(!s.conditional("Observation") && !s.if_match("Observation"));
        assert!(
            !s.conditional("Procedure"),
            "an unlisted type is not assumed"
        );
        let none =
            detect(&json!({"resourceType": "CapabilityStatement", "rest": [{"mode": "server"}]}));
        assert!(!none.transactions);
        let forced = Support {
            conditional_override: Some(true),
            ..none
        };
        assert!(forced.conditional("Observation"));
    }
}

//! Deterministic resource ids and business identifiers.
//!
//! Every resource gets a UUID v5 over Engraft's namespace and `registry/centre/upn/key`, where
//! `key` names the item inside the record (`tx1/hsct`, `tx1/fu/D100/2020-08-01/edss`). The same
//! record always gives the same ids, and the business identifier carries the same key so that
//! conditional updates on the identifier make replays idempotent.

use uuid::Uuid;

use crate::terminology::BASE;

/// Engraft's UUID v5 namespace (itself the v5 UUID of the canonical base in the URL namespace).
pub fn namespace() -> Uuid {
    Uuid::new_v5(&Uuid::NAMESPACE_URL, BASE.as_bytes())
}

/// Identifier system of every item Engraft emits, scoped to a registry and centre.
pub fn item_system() -> String {
    format!("{BASE}/sid/record-item")
}

/// Identifier system of a centre's registry UPNs.
pub fn upn_system(registry: &str, centre: &str) -> String {
    format!("{BASE}/sid/upn/{registry}/{centre}")
}

/// Identifier system of registry record ids.
pub fn record_system(registry: &str) -> String {
    format!("{BASE}/sid/record/{registry}")
}

/// Identifier system of centres.
pub fn centre_system(registry: &str) -> String {
    format!("{BASE}/sid/centre/{registry}")
}

/// The id of the item `key` of one patient's record (`scope` is `registry/centre/upn`).
pub fn item_uuid(scope: &str, key: &str) -> Uuid {
    uuid_of(&[scope, "/", key].concat())
}

/// The id of an item by its full name `registry/centre/upn/key`.
pub fn uuid_of(name: &str) -> Uuid {
    static NS: std::sync::OnceLock<Uuid> = std::sync::OnceLock::new();
    Uuid::new_v5(NS.get_or_init(namespace), name.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_distinct() {
        let a = item_uuid("EBMT/C1/U1", "tx1/hsct");
        assert_eq!(a, item_uuid("EBMT/C1/U1", "tx1/hsct"));
        assert_ne!(a, item_uuid("EBMT/C1/U2", "tx1/hsct"));
        assert_eq!(a.get_version_num(), 5);
    }
}

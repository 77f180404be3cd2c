//! JSON parsing that refuses duplicate object keys. serde_json keeps the last of two equal
//! keys silently; for clinical data a duplicated `"value"` is an error, not a choice.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// Parses JSON text into a [`Value`], failing on duplicate keys in any object. Nesting deeper
/// than serde_json's recursion limit (128) fails as well, without exhausting the stack.
pub fn parse(text: &[u8]) -> Result<Value, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(text);
    let v = NoDuplicates.deserialize(&mut de)?;
    de.end()?;
    Ok(v)
}

struct NoDuplicates;

const ARBITRARY_NUMBER: &str = "$serde_json::private::Number";

impl<'de> DeserializeSeed<'de> for NoDuplicates {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for NoDuplicates {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JSON")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v)
            .map(Value::Number)
            .unwrap_or(Value::Null))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(NoDuplicates)? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            // With serde_json's `arbitrary_precision` (enabled by fhirbolt for decimals),
            // non-integer and large numbers arrive as this one-entry map.
            if key == ARBITRARY_NUMBER && out.is_empty() {
                let text: String = map.next_value()?;
                let number: serde_json::Number =
                    serde_json::from_str(&text).map_err(de::Error::custom)?;
                if !number.as_f64().is_some_and(f64::is_finite) {
                    return Err(de::Error::custom("number out of range"));
                }
                return Ok(Value::Number(number));
            }
            if out.contains_key(&key) {
                return Err(de::Error::custom(format_args!("duplicate key '{key}'")));
            }
            let v = map.next_value_seed(NoDuplicates)?;
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_keys_are_refused_at_any_depth() {
        assert!(parse(br#"{"a": 1, "a": 2}"#).is_err());
        assert!(parse(br#"{"a": [{"b": 1, "b": 1}]}"#).is_err());
        assert_eq!(parse(br#"{"a": 1, "b": {"a": 2}}"#).unwrap()["b"]["a"], 2);
        assert_eq!(parse(br#"{"a": 1.5}"#).unwrap()["a"].as_f64(), Some(1.5));
        assert!(parse(br#"{"a": 12345678901234567890123}"#).unwrap()["a"].is_number());
    }

    #[test]
    fn deep_nesting_and_trailing_garbage_are_errors() {
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(parse(deep.as_bytes()).is_err());
        assert!(parse(b"{} x").is_err());
        assert!(parse(br#"{"a": 1e999}"#).is_err());
    }
}

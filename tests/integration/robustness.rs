//! Every leaf of a record replaced by hostile values: conversion answers (a Bundle or the
//! issues), never panics, never returns an internal error, and never echoes the value.

use engraft::convert::{Converter, Outcome};
use serde_json::{json, Value};

use super::helpers::*;

fn leaves(v: &Value, ptr: String, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => m
            .iter()
            .for_each(|(k, x)| leaves(x, format!("{ptr}/{k}"), out)),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .for_each(|(i, x)| leaves(x, format!("{ptr}/{i}"), out)),
        _ => out.push(ptr),
    }
}

#[test]
fn hostile_values_in_every_field_are_answered_without_panics() {
    let base = base();
    let mut ptrs = Vec::new();
    leaves(&base, String::new(), &mut ptrs);
    assert!(ptrs.len() > 100, "{}", ptrs.len());
    let conv = Converter::default();
    let marker = "ZZ-HOSTILE-ZZ";
    let hostile = [
        json!(null),
        json!(-1e308),
        json!(""),
        json!(marker),
        json!([[[]]]),
        json!({"$ref": "#"}),
    ];
    let mut outcomes = (0, 0);
    for p in &ptrs {
        for h in &hostile {
            let mut r = base.clone();
            *r.pointer_mut(p).unwrap() = h.clone();
            match conv.convert_value(r, NOW) {
                Outcome::Converted(_) => outcomes.0 += 1,
                Outcome::Rejected(rej) => {
                    outcomes.1 += 1;
                    for i in &rej.issues {
                        assert_ne!(i.severity, "fatal", "{p} = {h}: internal error {i:?}");
                        assert!(
                            !i.diagnostics.contains(marker),
                            "{p}: the message echoes the value: {}",
                            i.diagnostics
                        );
                    }
                }
            }
        }
    }
    // Most hostile values must be refused; some (a free-text name, an optional field set to
    // null) are legitimately accepted.
    assert!(outcomes.1 > outcomes.0 * 3, "{outcomes:?}");
}

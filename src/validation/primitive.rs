//! Formats of FHIR R4 primitive values, per the regular expressions and ranges of the spec
//! (https://hl7.org/fhir/R4/datatypes.html), written as plain matchers: no regex engine, no
//! backtracking, linear in the input.

/// Why a primitive value is not valid for its type (never includes the value).
pub fn check(type_code: &str, v: &serde_json::Value) -> Option<&'static str> {
    use serde_json::Value;
    match (type_code, v) {
        ("boolean", Value::Bool(_)) => None,
        ("integer", Value::Number(n)) => match n.as_i64() {
            Some(i) if i32::try_from(i).is_ok() => None,
            _ => Some("an integer must be a whole number in the 32-bit range"),
        },
        ("positiveInt", Value::Number(n)) => match n.as_i64() {
            Some(i) if (1..=i64::from(i32::MAX)).contains(&i) => None,
            _ => Some("a positiveInt must be a whole number from 1 to 2147483647"),
        },
        ("unsignedInt", Value::Number(n)) => match n.as_i64() {
            Some(i) if (0..=i64::from(i32::MAX)).contains(&i) => None,
            _ => Some("an unsignedInt must be a whole number from 0 to 2147483647"),
        },
        ("decimal", Value::Number(n)) => {
            if n.as_f64().is_some_and(f64::is_finite) {
                None
            } else {
                Some("a decimal must be a finite number")
            }
        }
        (_, Value::String(s)) => string_format(type_code, s),
        _ => None,
    }
}

fn string_format(t: &str, s: &str) -> Option<&'static str> {
    let ok = match t {
        "date" => is_date(s),
        "dateTime" => is_date_time(s),
        "instant" => is_instant(s),
        "time" => is_time(s),
        "code" => is_code(s),
        "id" => is_id(s),
        "oid" => is_oid(s),
        "uuid" => is_uuid(s),
        "uri" | "url" | "canonical" => is_uri(s),
        "base64Binary" => is_base64(s),
        "string" | "markdown" => !s.trim().is_empty() && s.len() <= 1024 * 1024,
        _ => true,
    };
    if ok {
        None
    } else {
        Some(match t {
            "date" => "a date must be YYYY, YYYY-MM or YYYY-MM-DD with a real month and day",
            "dateTime" => "a dateTime must be a date, or a date with hh:mm:ss and a zone",
            "instant" => "an instant must be YYYY-MM-DDThh:mm:ss(.sss) with a zone",
            "time" => "a time must be hh:mm:ss",
            "code" => "a code must not be empty or have leading, trailing or double spaces",
            "id" => "an id is 1-64 of A-Z a-z 0-9 - .",
            "oid" => "an oid must be urn:oid: followed by a dotted number",
            "uuid" => "a uuid must be urn:uuid: followed by a lower-case UUID",
            "uri" | "url" | "canonical" => "a URI must not be empty or contain whitespace",
            "base64Binary" => "base64Binary must be valid base64",
            _ => "a string must not be empty, whitespace only, or larger than 1 MB",
        })
    }
}

fn digits(s: &str, n: usize) -> Option<u32> {
    (s.len() == n && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

fn days_in_month(y: u32, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        _ => 0,
    }
}

pub fn is_date(s: &str) -> bool {
    let mut p = s.split('-');
    let (Some(y), m, d, None) = (
        p.next().and_then(|y| digits(y, 4)),
        p.next(),
        p.next(),
        p.next(),
    ) else {
        return false;
    };
    match (m, d) {
        (None, None) => true,
        (Some(m), None) => digits(m, 2).is_some_and(|m| (1..=12).contains(&m)),
        (Some(m), Some(d)) => match (digits(m, 2), digits(d, 2)) {
            (Some(m), Some(d)) => (1..=12).contains(&m) && d >= 1 && d <= days_in_month(y, m),
            _ => false,
        },
        (None, Some(_)) => false,
    }
}

pub fn is_time(s: &str) -> bool {
    let (hms, frac) = match s.split_once('.') {
        Some((a, f)) => (a, Some(f)),
        None => (s, None),
    };
    if frac.is_some_and(|f| f.is_empty() || !f.bytes().all(|b| b.is_ascii_digit())) {
        return false;
    }
    let p: Vec<&str> = hms.split(':').collect();
    p.len() == 3
        && digits(p[0], 2).is_some_and(|h| h <= 23)
        && digits(p[1], 2).is_some_and(|m| m <= 59)
        && digits(p[2], 2).is_some_and(|x| x <= 60)
}

/// `Z` or `±hh:mm`, shared with the registry date parser.
fn is_zone(z: &str) -> bool {
    crate::record::date::valid_zone(z)
}

fn split_time_zone(t: &str) -> Option<(&str, &str)> {
    if let Some(x) = t.strip_suffix('Z') {
        return Some((x, "Z"));
    }
    let i = t.rfind(['+', '-'])?;
    Some((&t[..i], &t[i..]))
}

pub fn is_date_time(s: &str) -> bool {
    match s.split_once('T') {
        None => is_date(s),
        Some((d, t)) => {
            // With a time, the day and a zone are required (edge case 31).
            d.len() == 10
                && is_date(d)
                && split_time_zone(t).is_some_and(|(clock, zone)| is_time(clock) && is_zone(zone))
        }
    }
}

pub fn is_instant(s: &str) -> bool {
    s.split_once('T').is_some_and(|(d, _)| d.len() == 10) && is_date_time(s)
}

pub fn is_code(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with(char::is_whitespace)
        && !s.ends_with(char::is_whitespace)
        && !s.contains("  ")
        && !s.contains(['\t', '\n', '\r'])
}

pub fn is_id(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

pub fn is_oid(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("urn:oid:") else {
        return false;
    };
    let mut parts = rest.split('.');
    let first_ok = parts.next().is_some_and(|p| matches!(p, "0" | "1" | "2"));
    let rest: Vec<&str> = parts.collect();
    first_ok
        && !rest.is_empty()
        && rest.iter().all(|p| {
            !p.is_empty()
                && p.bytes().all(|b| b.is_ascii_digit())
                && (p.len() == 1 || !p.starts_with('0'))
        })
}

pub fn is_uuid(s: &str) -> bool {
    let Some(u) = s.strip_prefix("urn:uuid:") else {
        return false;
    };
    let groups: Vec<&str> = u.split('-').collect();
    groups.len() == 5
        && groups.iter().zip([8, 4, 4, 4, 12]).all(|(g, n)| {
            g.len() == n
                && g.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
}

pub fn is_uri(s: &str) -> bool {
    // Nearly every URI is ASCII: its bytes are checked without decoding characters. The ASCII
    // whitespace `char::is_whitespace` knows includes the vertical tab.
    !s.is_empty()
        && if s.is_ascii() {
            !s.bytes().any(|b| b.is_ascii_whitespace() || b == 0x0b)
        } else {
            !s.contains(char::is_whitespace)
        }
}

pub fn is_base64(s: &str) -> bool {
    let t: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if t.len() % 4 != 0 {
        return false;
    }
    let pad = t.iter().rev().take_while(|b| **b == b'=').count();
    pad <= 2
        && t[..t.len() - pad]
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn uris_hold_no_whitespace_of_any_kind() {
        assert!(is_uri("http://example.org/a?b=c|d") && is_uri("urn:uuid:1-2"));
        for bad in ["", "a b", "a\tb", "a\u{0b}b", "a\u{a0}b", "é\u{3000}"] {
            assert!(!is_uri(bad), "{bad:?}");
        }
        assert!(is_uri("http://example.org/é"));
    }

    #[test]
    fn dates_follow_the_spec() {
        assert!(is_date("2020") && is_date("2020-02") && is_date("2020-02-29"));
        assert!(
            !is_date("2020-13-45")
                && !is_date("2021-02-29")
                && !is_date("20-01")
                && !is_date("2020-1")
        );
        assert!(is_date_time("2020-02-03T10:00:00+01:00") && is_date_time("2020-02"));
        assert!(!is_date_time("2020-02-03T10:00:00"), "a time needs a zone");
        assert!(is_instant("2020-02-03T10:00:00.123Z") && !is_instant("2020-02-03"));
    }

    #[test]
    fn identifiers_and_codes() {
        assert!(is_id("abc-1.2") && !is_id("a_b") && !is_id(&"a".repeat(65)));
        assert!(is_code("active") && !is_code(" active") && !is_code("a  b"));
        assert!(is_oid("urn:oid:1.2.840.10008") && !is_oid("urn:oid:3.1") && !is_oid("1.2.3"));
        assert!(
            is_uuid("urn:uuid:c5c113e2-3c03-5b47-b6d1-bd659bc9ca20")
                && !is_uuid("urn:uuid:C5C113E2-3c03-5b47-b6d1-bd659bc9ca20")
        );
        assert!(is_base64("aGVsbG8=") && !is_base64("aGVsbG8"));
    }

    #[test]
    fn numbers_have_their_ranges() {
        assert_eq!(
            check("integer", &json!(2147483648i64)),
            Some("an integer must be a whole number in the 32-bit range")
        );
        assert!(check("positiveInt", &json!(0)).is_some());
        assert!(check("unsignedInt", &json!(0)).is_none());
        assert!(check("integer", &json!(1.5)).is_some());
    }
}

//! Hostile HTTP input, table-driven: well over a thousand malformed or hostile requests across
//! every route of the route table (truncated bodies, wrong types, huge numbers, deep nesting,
//! invalid UTF-8, path traversal and SQL metacharacters in ids and search parameters, forged
//! and oversized tokens and headers, header injection, bodies that stop halfway). Every answer
//! is a client error (never a 5xx), an OperationOutcome where the request reached Engraft; the
//! process stays up; and the store's contents are the same before and after, byte for byte.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::Duration;

use engraft::server::routes::ROUTES;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sqlx::Row as _;

use crate::server::{authed_client, record_text, Server};
use crate::sync::post_record;

/// Every table's rows, in a fixed order, as one string (SQLite's `quote()` of each value).
async fn contents(db_url: &str) -> String {
    let path = db_url.trim_start_matches("sqlite://");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{path}?mode=ro"))
        .await
        .unwrap();
    let tables: Vec<String> = sqlx::query(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_sqlx%' ORDER BY name",
    )
    .fetch_all(&pool)
    .await
    .unwrap()
    .iter()
    .map(|r| r.get(0))
    .collect();
    let mut out = String::new();
    for t in tables {
        let cols: Vec<String> = sqlx::query(&format!("SELECT name FROM pragma_table_info('{t}')"))
            .fetch_all(&pool)
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        let row = cols
            .iter()
            .map(|c| format!("quote(\"{c}\")"))
            .collect::<Vec<_>>()
            .join(" || '|' || ");
        let rows = sqlx::query(&format!("SELECT {row} FROM \"{t}\" ORDER BY 1"))
            .fetch_all(&pool)
            .await
            .unwrap();
        out.push_str(&format!("## {t} ({} rows)\n", rows.len()));
        for r in rows {
            out.push_str(&r.get::<String, _>(0));
            out.push('\n');
        }
    }
    pool.close().await;
    out
}

/// A route pattern with its `{type}` filled by `rtype` and its other parameters by `id`.
fn fill(path: &str, rtype: &str, id: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let end = rest[start..]
            .find('}')
            .map_or(rest.len(), |e| start + e + 1);
        let name = &rest[start + 1..end - 1];
        out.push_str(match name {
            "type" => rtype,
            _ => id,
        });
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// Ids and path segments: traversal, SQL, encodings, control characters, sheer length.
fn hostile_ids() -> Vec<String> {
    let mut ids: Vec<String> = [
        "..%2F..%2Fetc%2Fpasswd",
        "%2e%2e%2f%2e%2e%2f",
        "..%5C..%5Cwindows",
        "'%20OR%20'1'%3D'1",
        "1%3B%20DROP%20TABLE%20records%3B--",
        "%00",
        "%E2%80%AE",
        "%FF%FE",
        "-1",
        "99999999999999999999999999",
        "0x41",
        "%7B%7D",
        "%25",
        "Patient%2F..%2F..",
        "a%0D%0ASet-Cookie:%20x=y",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    ids.push("A".repeat(4000));
    ids
}

/// Bodies for routes that take one.
fn hostile_bodies() -> Vec<(&'static str, Vec<u8>)> {
    let record = record_text();
    let deep_array = format!("{}{}", "[".repeat(20_000), "]".repeat(20_000));
    let deep_object = format!("{}1{}", "{\"a\":".repeat(5_000), "}".repeat(5_000));
    let mut with_sql: Value = serde_json::from_str(&record).unwrap();
    with_sql["recordId"] = json!("x'); DROP TABLE records; --");
    with_sql["patient"]["upn"] = json!("\" OR 1=1 --");
    let mut wrong_types: Value = serde_json::from_str(&record).unwrap();
    wrong_types["transplants"] = json!("not a list");
    wrong_types["patient"]["birthDate"] = json!(19860412);
    let mut huge_numbers: Value = serde_json::from_str(&record).unwrap();
    huge_numbers["version"] = json!(u64::MAX);
    let huge_numbers = serde_json::to_string(&huge_numbers).unwrap().replacen(
        "\"value\":4.0",
        "\"value\":1e999999",
        1,
    );
    let mut truncated = record.clone().into_bytes();
    truncated.truncate(truncated.len() / 2);
    let mut invalid_utf8 = record.clone().into_bytes();
    let at = invalid_utf8.len() / 3;
    invalid_utf8.splice(at..at, [0xff, 0xfe, 0xc3]);
    vec![
        ("empty", Vec::new()),
        ("truncated record", truncated),
        ("truncated object", b"{\"resourceType\": \"Bundle\", \"entry\": [".to_vec()),
        ("json array of scalars", b"[1, 2, 3]".to_vec()),
        ("json number", b"42".to_vec()),
        ("json string", b"\"Patient\"".to_vec()),
        ("json null", b"null".to_vec()),
        ("json true", b"true".to_vec()),
        ("deep array", deep_array.into_bytes()),
        ("deep object", deep_object.into_bytes()),
        ("invalid utf-8", invalid_utf8),
        ("nul bytes", b"{\"recordId\": \"a\0b\"}".to_vec()),
        ("sql in fields", serde_json::to_vec(&with_sql).unwrap()),
        ("wrong types", serde_json::to_vec(&wrong_types).unwrap()),
        ("huge numbers", huge_numbers.into_bytes()),
        ("huge integer", format!("{{\"version\": {}}}", "9".repeat(400)).into_bytes()),
        ("duplicate keys", b"{\"recordId\": \"a\", \"recordId\": \"b\"}".to_vec()),
        ("unknown resource", b"{\"resourceType\": \"Spaceship\", \"id\": \"1\"}".to_vec()),
        ("bundle of garbage", b"{\"resourceType\": \"Bundle\", \"type\": \"transaction\", \"entry\": [{\"resource\": 7}]}".to_vec()),
        ("xml", b"<?xml version=\"1.0\"?><Patient xmlns=\"http://hl7.org/fhir\"><id value=\"1\"/>".to_vec()),
        ("csv garbage", b"a,b,c\n\"unterminated,1,2\n".to_vec()),
        ("form", b"grant_type=client_credentials&client_assertion=a.b.c".to_vec()),
        ("binary", (0u8..=255).cycle().take(4096).collect()),
        ("bom then garbage", b"\xef\xbb\xbf{{{".to_vec()),
        ("oversized", vec![b' '; 9 * 1024 * 1024]),
    ]
}

/// Search and query strings: injection, impossible values, unknown parameters.
fn hostile_queries() -> Vec<&'static str> {
    vec![
        "identifier=%27%20OR%20%271%27%3D%271",
        "identifier=x%7C%27%3B%20DROP%20TABLE%20resources%3B--",
        "code=%25%25%25",
        "_count=-1",
        "_count=99999999999999999999999",
        "_count=abc",
        "_offset=-5",
        "date=2020-13-45",
        "date=gt9999999999",
        "date=eq",
        "_sort=%3BDROP%20TABLE",
        "_include=*",
        "_include=Observation%3Asubject%3APatient%3A%3A",
        "unknown-param=1",
        "patient=..%2F..%2F",
        "subject%5B0%5D=1",
        "_lastUpdated=ge%00",
        "identifier=",
        "%FF%FE=1",
        "status=x&status=y&status=z&status=%27",
    ]
}

/// Tokens and credentials that must never be accepted.
fn hostile_auth() -> Vec<(&'static str, String)> {
    // alg none, a token signed by nobody, malformed shapes.
    let none = format!(
        "{}.{}.",
        base64_url(br#"{"alg":"none","typ":"JWT"}"#),
        base64_url(br#"{"iss":"x","sub":"x","scope":"system/*.cruds","exp":9999999999}"#)
    );
    vec![
        ("no token", String::new()),
        ("bearer without token", "Bearer".into()),
        ("basic", "Basic YWRtaW46YWRtaW4=".into()),
        ("alg none", format!("Bearer {none}")),
        ("garbage", "Bearer a.b.c".into()),
        ("huge token", format!("Bearer {}", "A".repeat(16_000))),
        ("two schemes", "Bearer x, Bearer y".into()),
    ]
}

fn base64_url(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

fn method(m: &str) -> Method {
    Method::from_bytes(m.as_bytes()).unwrap()
}

/// The answer is a client error (for `$validate`, a 200 OperationOutcome with errors); where
/// Engraft answered (not the HTTP layer refusing the
/// request before routing it) it is an OperationOutcome, or an OAuth error on the token
/// endpoint.
async fn assert_refused(what: &str, path: &str, res: reqwest::Response) {
    let status = res.status();
    if path.contains("$validate") && status == StatusCode::OK {
        // `$validate` answers 200 with the problems (FHIR's operation semantics).
        let v: Value = res.json().await.unwrap();
        assert_eq!(v["resourceType"], "OperationOutcome", "{what} on {path}");
        let errors = v["issue"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| matches!(i["severity"].as_str(), Some("error" | "fatal")));
        assert!(errors.count() > 0, "{what} on {path}: {v}");
        return;
    }
    assert!(
        status.is_client_error(),
        "{what} on {path}: {status} is not a client error"
    );
    let ct = res
        .headers()
        .get("content-type")
        .and_then(|c| c.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = res.bytes().await.unwrap_or_default();
    if path == "/auth/token" {
        // RFC 6749 errors; a body refused before it is read is an OperationOutcome.
        let v: Value = serde_json::from_slice(&body).unwrap_or_default();
        assert!(
            v["error"].is_string() || v["resourceType"] == "OperationOutcome",
            "{what} on {path}: {status} {v}"
        );
        return;
    }
    assert!(
        ct.starts_with("application/fhir+json"),
        "{what} on {path}: {status} answered {ct:?}"
    );
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["resourceType"], "OperationOutcome", "{what} on {path}");
    assert!(!v["issue"].as_array().unwrap().is_empty());
}

/// A request with a body that stops halfway: the server gives up on it (or answers a client
/// error) and stays up.
fn stalled_body(base: &str, path: &str) -> Option<u16> {
    let addr = base.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{{\"recordId\": \"slow"
    )
    .unwrap();
    s.flush().unwrap();
    // Stop sending; the peer closes or answers.
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
}

/// A header with CR LF in it, sent raw (HTTP clients refuse to): refused at the HTTP layer.
fn injected_header(base: &str, path: &str) -> Option<u16> {
    let addr = base.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nX-Forwarded-For: 1.2.3.4\rSet-Cookie: a=b\r\nAuthorization: Bearer x\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_hostile_requests_get_client_errors_and_change_nothing() {
    let s = Server::start_with("", &[], &[]);
    // Something to protect: a stored record (with its resources, outbox row and audit row).
    let id = post_record(&s, &serde_json::from_str(&record_text()).unwrap()).await;
    let before = contents(&s.db_url).await;
    assert!(before.contains(&id));

    let authed = authed_client();
    let anonymous = reqwest::Client::new();
    let mut sent = 0usize;
    let takes_body = |r: &engraft::server::routes::Route| {
        matches!(r.method, "POST" | "PUT")
            && !r.path.contains("/retry")
            && !r.path.ends_with("/pull")
            && !r.path.ends_with("/dry-run")
            && !r.path.contains("{decision}")
    };

    // 1. Bodies, on every route that takes one.
    for r in ROUTES.iter().filter(|r| takes_body(r)) {
        let path = fill(r.path, "Observation", "no-such-id");
        for (what, body) in hostile_bodies() {
            for ct in ["application/json", "application/fhir+json", "text/csv"] {
                let mut req = authed
                    .request(method(r.method), s.url(&path))
                    .header("content-type", ct)
                    .body(body.clone());
                if r.method == "PUT" {
                    req = req.header("if-match", "W/\"1\"");
                }
                let res = req.send().await.unwrap();
                assert_refused(what, &path, res).await;
                sent += 1;
            }
        }
    }

    // 2. Hostile ids in every route with a path parameter, every method it has.
    for r in ROUTES.iter().filter(|r| r.path.contains('{')) {
        for id in hostile_ids() {
            let path = fill(r.path, &id, &id);
            let mut req = authed.request(method(r.method), s.url(&path));
            if r.method == "PUT" {
                req = req
                    .header("if-match", "W/\"1\"")
                    .header("content-type", "application/json")
                    .body(record_text());
            }
            let res = req.send().await.unwrap();
            assert_refused(&format!("id {:.40}", id), &path, res).await;
            sent += 1;
        }
    }

    // 3. Hostile search parameters: refused, or a valid empty answer; never an injection.
    for r in ROUTES.iter().filter(|r| r.method == "GET") {
        for q in hostile_queries() {
            let path = format!("{}?{q}", fill(r.path, "Observation", "no-such-id"));
            let res = authed.get(s.url(&path)).send().await.unwrap();
            let status = res.status();
            assert!(status.as_u16() < 500, "{path}: {status}");
            if status.is_client_error() {
                assert_refused(q, &path, res).await;
            } else if r.path == "/fhir/{type}" {
                let v: Value = res.json().await.unwrap();
                assert_eq!(v["total"], 0, "{path}: {v}");
            }
            sent += 1;
        }
    }

    // 4. Forged or broken credentials on every route that needs any.
    for r in ROUTES.iter().filter(|r| r.need.is_some()) {
        let path = fill(r.path, "Observation", "no-such-id");
        for (what, auth) in hostile_auth() {
            let mut req = anonymous.request(method(r.method), s.url(&path));
            if !auth.is_empty() {
                req = req.header("authorization", auth);
            }
            if takes_body(r) {
                req = req
                    .header("content-type", "application/json")
                    .body(record_text());
            }
            let res = req.send().await.unwrap();
            assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{what} on {path}");
            assert_refused(what, &path, res).await;
            sent += 1;
        }
    }

    // 5. Odd headers on every route: wrong media types, oversized and conflicting headers.
    for r in ROUTES.iter().filter(|r| takes_body(r)) {
        let path = fill(r.path, "Observation", "no-such-id");
        for (name, value) in [
            ("content-type", "application/xml".to_string()),
            (
                "content-type",
                "multipart/form-data; boundary=x".to_string(),
            ),
            (
                "content-type",
                "application/json; charset=utf-16".to_string(),
            ),
            ("accept", "text/html".to_string()),
            ("if-match", "*; DROP TABLE".to_string()),
            ("x-padding", "x".repeat(20_000)),
            ("content-encoding", "gzip".to_string()),
        ] {
            let mut req = authed
                .request(method(r.method), s.url(&path))
                .header(name, value.as_str())
                .body(b"{\"resourceType\": 1}".to_vec());
            if name != "content-type" {
                req = req.header("content-type", "application/json");
            }
            let res = req.send().await.unwrap();
            let status = res.status();
            assert!(status.is_client_error(), "{name} on {path}: {status}");
            sent += 1;
        }
    }

    // 6. At the HTTP layer: header injection and bodies that stop halfway.
    for path in [
        "/registry/records",
        "/fhir/$validate",
        "/fhir/$convert",
        "/auth/token",
    ] {
        let code = injected_header(&s.base, path);
        assert!(
            code.is_none_or(|c| (400..500).contains(&c)),
            "{path}: {code:?}"
        );
        let code = stalled_body(&s.base, path);
        assert!(
            code.is_none_or(|c| (400..500).contains(&c)),
            "{path}: {code:?}"
        );
        sent += 2;
    }

    assert!(sent >= 1000, "only {sent} hostile requests");
    // Alive and unchanged.
    let health = reqwest::get(s.url("/healthz")).await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let after = contents(&s.db_url).await;
    assert!(before == after, "the store changed under hostile input");
    println!(
        "{sent} hostile requests, all refused; store unchanged ({} bytes of rows)",
        after.len()
    );
}

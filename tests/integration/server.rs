//! `engraft serve` as a user runs it: the real binary on a random port, real HTTP. Every route
//! is sent malformed bodies, wrong media types, oversize payloads and wrong methods, and each
//! answer must be the right status with an OperationOutcome that is itself valid FHIR.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

use engraft::auth::keys::{self, SigningKey};
use jsonwebtoken::Algorithm;

use engraft::validation::Validator;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{fixtures, get_json, read_json, root};

/// The base URL the test servers are configured with (the `aud` of their tokens).
pub(crate) const BASE_URL: &str = "https://engraft.test";
/// The external identity provider the test servers trust.
pub(crate) const IDP: &str = "https://idp.engraft.test";

/// A test identity provider: an ES384 key whose JWKS file the test servers trust.
pub(crate) struct TestIdp {
    pub(crate) key: SigningKey,
    pub(crate) jwks_file: PathBuf,
    _dir: tempfile::TempDir,
}

impl TestIdp {
    fn new() -> TestIdp {
        let dir = tempfile::tempdir().unwrap();
        let (key, _) = SigningKey::generate("idp-1", Algorithm::ES384).unwrap();
        let jwks_file = dir.path().join("idp.jwks.json");
        std::fs::write(&jwks_file, keys::jwks([&key]).to_string()).unwrap();
        TestIdp {
            key,
            jwks_file,
            _dir: dir,
        }
    }

    /// A token from the IdP for Engraft with `scope`, valid ten minutes.
    pub(crate) fn token(&self, scope: &str) -> String {
        let now = jsonwebtoken::get_current_timestamp();
        self.sign(json!({
            "iss": IDP, "sub": "test-client", "client_id": "test-client", "aud": BASE_URL,
            "iat": now, "exp": now + 600, "scope": scope,
        }))
    }

    pub(crate) fn sign(&self, claims: Value) -> String {
        self.key.sign(&claims).unwrap()
    }
}

pub(crate) fn idp() -> &'static TestIdp {
    static IDP_KEY: OnceLock<TestIdp> = OnceLock::new();
    IDP_KEY.get_or_init(TestIdp::new)
}

/// A client whose every request carries a token with every scope.
pub(crate) fn authed_client() -> reqwest::Client {
    client_with(&idp().token("system/*.cruds"))
}

/// A client whose every request carries `token`.
pub(crate) fn client_with(token: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {token}").parse().unwrap(),
    );
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap()
}

/// A running `engraft serve` child, killed on drop.
pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) base: String,
    /// The store URL.
    pub(crate) db_url: String,
    /// The SQLite directory of a server started on its own file.
    _dir: Option<tempfile::TempDir>,
    _config: tempfile::TempDir,
}

impl Server {
    /// A server on a fresh SQLite file.
    pub(crate) fn start(env: &[(&str, &str)]) -> Server {
        Server::start_with("", &[], env)
    }

    /// A server on a fresh SQLite file with `extra` appended to its configuration file and
    /// `args` after `serve`.
    pub(crate) fn start_with(extra: &str, args: &[&str], env: &[(&str, &str)]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("engraft.db").display());
        let mut s = Server::spawn(&url, extra, args, env);
        s._dir = Some(dir);
        s
    }

    /// A server on the store at `url`.
    pub(crate) fn start_on(url: &str, env: &[(&str, &str)]) -> Server {
        Server::spawn(url, "", &[], env)
    }

    /// A server on the store at `url` with `extra` configuration.
    pub(crate) fn start_on_with(url: &str, extra: &str) -> Server {
        Server::spawn(url, extra, &[], &[])
    }

    fn spawn(url: &str, extra: &str, args: &[&str], env: &[(&str, &str)]) -> Server {
        let config = tempfile::tempdir().unwrap();
        let file = config.path().join("engraft.toml");
        std::fs::write(
            &file,
            format!(
                "[auth]\nbase_url = \"{BASE_URL}\"\n{extra}\n[[auth.issuers]]\nissuer = \"{IDP}\"\njwks = {:?}\nalgorithms = [\"ES384\"]\n",
                idp().jwks_file.display().to_string()
            ),
        )
        .unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_engraft"));
        cmd.arg("serve")
            .arg("--config")
            .arg(&file)
            .args(args)
            .current_dir(root())
            .env("ENGRAFT__STORE__URL", url)
            .env("ENGRAFT__SERVER__BIND", "127.0.0.1:0")
            .env("ENGRAFT__SERVER__WORKERS", "2")
            .env("ENGRAFT__LOG__LEVEL", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("engraft serve starts");
        let base = crate::helpers::listening_on(&mut child, "engraft listening on ");
        Server {
            child,
            base,
            db_url: url.to_string(),
            _dir: None,
            _config: config,
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Asserts an answer is `status` with a valid OperationOutcome; returns its issue codes
/// (Engraft's detail codes).
pub(crate) async fn outcome(res: reqwest::Response, status: StatusCode) -> Vec<String> {
    assert_eq!(res.status(), status, "{}", res.url());
    let ct = res.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ct.starts_with("application/fhir+json"), "{ct}");
    let body: Value = res.json().await.expect("an OperationOutcome body");
    assert_eq!(body["resourceType"], "OperationOutcome");
    let issues = Validator::bundled().validate(&body, None);
    assert!(
        issues.is_empty(),
        "the OperationOutcome is invalid: {issues:?}"
    );
    body["issue"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            i["details"]["coding"][0]["code"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

pub(crate) fn record_text() -> String {
    std::fs::read_to_string(fixtures("records").join("ms-rrms-auto-beam-atg.json")).unwrap()
}

#[tokio::test]
async fn health_readiness_and_a_truthful_capability_statement() {
    let s = Server::start(&[]);
    let c = authed_client();
    let h = c.get(s.url("/healthz")).send().await.unwrap();
    assert_eq!(h.status(), 200);
    let r: Value = c
        .get(s.url("/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["status"], "ready");
    assert_eq!(r["profiles"], 37);
    let m = c.get(s.url("/fhir/metadata")).send().await.unwrap();
    assert_eq!(m.status(), 200);
    let cs: Value = m.json().await.unwrap();
    assert_eq!(cs["resourceType"], "CapabilityStatement");
    assert_eq!(cs["fhirVersion"], "4.0.1");
    assert!(Validator::bundled().validate(&cs, None).is_empty());
    let ops: Vec<&str> = cs["rest"][0]["operation"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(ops, ["validate", "convert"]);
    let types: Vec<&str> = cs["rest"][0]["resource"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["type"].as_str().unwrap())
        .collect();
    assert!(types.contains(&"Observation") && types.contains(&"Patient"));
    let security = &cs["rest"][0]["security"];
    assert_eq!(security["service"][0]["coding"][0]["code"], "SMART-on-FHIR");
    assert_eq!(
        security["extension"][0]["extension"][0]["valueUri"],
        format!("{BASE_URL}/auth/token")
    );
    assert_eq!(r["store"], "reachable");
}

#[tokio::test]
async fn convert_answers_a_valid_bundle_or_every_issue_of_the_record() {
    let s = Server::start(&[]);
    let c = authed_client();
    let res = c
        .post(s.url("/fhir/$convert"))
        .header("content-type", "application/json")
        .body(record_text())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let mut bundle: Value = res.json().await.unwrap();
    assert!(Validator::bundled().validate(&bundle, None).is_empty());
    let mut golden = read_json(&fixtures("bundles").join("ms-rrms-auto-beam-atg.json"));
    // The same resources as the golden bundle, but for the conversion instant.
    for b in [&mut bundle, &mut golden] {
        let last = b["entry"].as_array().unwrap().len() - 1;
        let prov = b["entry"][last]["resource"].as_object_mut().unwrap();
        assert!(prov.remove("recorded").is_some());
    }
    assert!(
        bundle["entry"] == golden["entry"],
        "differs from the golden bundle"
    );

    // _pretty indents; the content is the same.
    let pretty = c
        .post(s.url("/fhir/$convert?_pretty=true"))
        .header("content-type", "application/fhir+json")
        .body(record_text())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(pretty.starts_with("{\n  \"resourceType\": \"Bundle\""));

    // A record that fails its checks: 422 with exactly its expected issues.
    let bad =
        std::fs::read_to_string(fixtures("invalid").join("alive-with-death-date.json")).unwrap();
    let expected = read_json(&fixtures("invalid").join("alive-with-death-date.expected.json"));
    let res = c
        .post(s.url("/fhir/$convert"))
        .header("content-type", "application/json")
        .body(bad)
        .send()
        .await
        .unwrap();
    let codes = outcome(res, StatusCode::UNPROCESSABLE_ENTITY).await;
    let want: Vec<String> = expected["issues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["code"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(codes, want);
}

#[tokio::test]
async fn validate_takes_raw_resources_and_parameters() {
    let s = Server::start(&[]);
    let c = authed_client();
    let golden =
        std::fs::read_to_string(fixtures("bundles").join("ms-rrms-auto-beam-atg.json")).unwrap();
    let res = c
        .post(s.url("/fhir/$validate"))
        .header("content-type", "application/fhir+json")
        .body(golden)
        .send()
        .await
        .unwrap();
    assert_eq!(outcome(res, StatusCode::OK).await, ["valid"]);

    let lab = read_json(&fixtures("invalid/fhir").join("lab-value-string.json"));
    let res = c
        .post(s.url("/fhir/Observation/$validate"))
        .header("content-type", "application/fhir+json")
        .body(lab.to_string())
        .send()
        .await
        .unwrap();
    let mut codes = outcome(res, StatusCode::OK).await;
    codes.sort();
    assert_eq!(codes, ["profile-slice-closed", "profile-type"]);

    // Parameters with a profile the resource does not declare.
    let mut obs = read_json(&fixtures("invalid/fhir").join("lab-without-value.json"));
    obs.as_object_mut().unwrap().remove("meta");
    let params = json!({"resourceType": "Parameters", "parameter": [
        {"name": "resource", "resource": obs},
        {"name": "profile", "valueCanonical": "https://engraft.dev/fhir/StructureDefinition/engraft-lab"}
    ]});
    let res = c
        .post(s.url("/fhir/$validate"))
        .header("content-type", "application/json")
        .body(params.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(outcome(res, StatusCode::OK).await, ["profile-cardinality"]);

    // The type in the URL must be the resource's, and a known one.
    let res = c
        .post(s.url("/fhir/Patient/$validate"))
        .header("content-type", "application/fhir+json")
        .body(lab.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(
        outcome(res, StatusCode::BAD_REQUEST).await,
        ["resource-type"]
    );
    let res = c
        .post(s.url("/fhir/Spaceship/$validate"))
        .header("content-type", "application/fhir+json")
        .body(lab.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(outcome(res, StatusCode::NOT_FOUND).await, ["not-found"]);
    let res = c
        .post(s.url("/fhir/$validate"))
        .header("content-type", "application/fhir+json")
        .body(r#"{"resourceType": "Parameters", "parameter": []}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(outcome(res, StatusCode::BAD_REQUEST).await, ["parameters"]);
}

/// An inbound Bundle of `kind` with `entries` (resource, method).
fn inbound(kind: &str, entries: &[(Value, &str)]) -> Value {
    json!({
        "resourceType": "Bundle",
        "type": kind,
        "entry": entries.iter().map(|(r, m)| json!({
            "resource": r,
            "request": {"method": m, "url": r["resourceType"]},
        })).collect::<Vec<_>>(),
    })
}

async fn post_fhir(s: &Server, bundle: &Value) -> reqwest::Response {
    authed_client()
        .post(s.url("/fhir"))
        .header("content-type", "application/fhir+json")
        .body(bundle.to_string())
        .send()
        .await
        .unwrap()
}

/// `GET /metrics`, as text.
async fn metrics_text(s: &Server) -> String {
    authed_client()
        .get(s.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

async fn record_version(s: &Server, id: &str) -> String {
    let res = authed_client()
        .get(s.url(&format!("/registry/records/{id}")))
        .send()
        .await
        .unwrap();
    res.headers()["etag"].to_str().unwrap().to_string()
}

#[tokio::test]
async fn inbound_bundles_map_back_onto_registry_records_all_or_nothing() {
    let s = Server::start(&[]);
    let c = authed_client();
    let id = crate::sync::post_record(&s, &serde_json::from_str(&record_text()).unwrap()).await;
    let patients = get_json(&c, &s.url("/fhir/Patient")).await;
    let patient = format!(
        "Patient/{}",
        patients["entry"][0]["resource"]["id"].as_str().unwrap()
    );
    let obs = |system: &str, code: &str, date: &str, value: Value| {
        let mut o = json!({
            "resourceType": "Observation",
            "status": "final",
            "code": {"coding": [{"system": system, "code": code}]},
            "subject": {"reference": patient},
            "effectiveDateTime": date,
        });
        o.as_object_mut()
            .unwrap()
            .extend(value.as_object().unwrap().clone());
        o
    };
    let anc = obs(
        "http://loinc.org",
        "751-8",
        "2020-03-02",
        json!({"valueQuantity": {"value": 1.9, "unit": "10^9/L", "system": "http://unitsofmeasure.org", "code": "10*9/L"}}),
    );
    let edss = obs(
        "https://engraft.dev/fhir/CodeSystem/engraft-observation",
        "edss",
        "2019-12-12",
        json!({"valueQuantity": {"value": 2.5, "system": "http://unitsofmeasure.org", "code": "{score}"}}),
    );
    let sle = json!({
        "resourceType": "Condition",
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "55464009"}]},
        "subject": {"reference": patient},
        "onsetDateTime": "2021-01-01",
    });

    // One entry the record has no place for: the whole transaction is refused, nothing changes.
    let res = post_fhir(
        &s,
        &inbound(
            "transaction",
            &[
                (anc.clone(), "POST"),
                (edss.clone(), "POST"),
                (sle.clone(), "POST"),
            ],
        ),
    )
    .await;
    assert_eq!(
        outcome(res, StatusCode::UNPROCESSABLE_ENTITY).await,
        ["other-disease"]
    );
    assert_eq!(record_version(&s, &id).await, "W/\"1\"");

    // Without it: one new record version holding both findings.
    let res = post_fhir(
        &s,
        &inbound(
            "transaction",
            &[(anc.clone(), "POST"), (edss.clone(), "POST")],
        ),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let answer: Value = res.json().await.unwrap();
    assert_eq!(answer["type"], "transaction-response");
    let first = &answer["entry"][0]["response"];
    assert_eq!(first["status"], "201 Created", "{answer}");
    assert_eq!(
        answer["entry"][1]["response"]["status"], "200 OK",
        "the EDSS of Y1 changed: {answer}"
    );
    assert_eq!(record_version(&s, &id).await, "W/\"2\"");
    let made = get_json(
        &c,
        &s.url(&format!("/fhir/{}", first["location"].as_str().unwrap())),
    )
    .await;
    assert_eq!(made["code"]["coding"][0]["code"], "751-8");
    assert_eq!(made["subject"]["reference"], patient);
    let rec = get_json(&c, &s.url(&format!("/registry/records/{id}"))).await;
    let y1 = rec["followUps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["timePoint"] == "Y1")
        .unwrap();
    assert_eq!(
        y1["scores"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["scale"] == "edss")
            .unwrap()["value"],
        2.5
    );

    // What the record already holds and something new, in one transaction: one answer each.
    let platelets = obs(
        "http://loinc.org",
        "777-3",
        "2020-03-02",
        json!({"valueQuantity": {"value": 180, "unit": "10^9/L", "system": "http://unitsofmeasure.org", "code": "10*9/L"}}),
    );
    let res = post_fhir(
        &s,
        &inbound("transaction", &[(anc.clone(), "POST"), (platelets, "POST")]),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let answer: Value = res.json().await.unwrap();
    let statuses: Vec<&str> = answer["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["response"]["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["200 OK", "201 Created"], "{answer}");
    assert_eq!(record_version(&s, &id).await, "W/\"3\"");

    // A batch takes each entry on its own.
    let stranger = json!({"reference": "Patient/00000000-0000-4000-8000-000000000000"});
    let mut lost = anc.clone();
    lost["subject"] = stranger;
    let res = post_fhir(
        &s,
        &inbound(
            "batch",
            &[(anc.clone(), "POST"), (lost, "POST"), (anc.clone(), "PUT")],
        ),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let answer: Value = res.json().await.unwrap();
    assert_eq!(answer["type"], "batch-response");
    let statuses: Vec<&str> = answer["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["response"]["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        [
            "200 OK",
            "422 Unprocessable Entity",
            "422 Unprocessable Entity"
        ]
    );
    let codes: Vec<&str> = answer["entry"].as_array().unwrap()[1..]
        .iter()
        .map(|e| {
            e["response"]["outcome"]["issue"][0]["details"]["coding"][0]["code"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(codes, ["unknown-patient", "method-not-supported"]);
    assert_eq!(
        record_version(&s, &id).await,
        "W/\"3\"",
        "the ANC was there already"
    );

    // Each new record version counts as an accepted record: the POST and two transactions.
    let metrics = metrics_text(&s).await;
    assert!(
        metrics.contains(r#"engraft_records_total{outcome="accepted"} 3"#),
        "{metrics}"
    );

    // Engraft's own Bundles are not findings about a held Patient: every entry says why.
    let golden = read_json(&fixtures("bundles").join("ms-rrms-auto-beam-atg.json"));
    let n = golden["entry"].as_array().unwrap().len();
    let codes = outcome(
        post_fhir(&s, &golden).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(codes.len(), n, "{codes:?}");
    let invalid = read_json(&fixtures("invalid/fhir").join("bundle-without-timestamp.json"));
    assert_eq!(
        outcome(
            post_fhir(&s, &invalid).await,
            StatusCode::UNPROCESSABLE_ENTITY
        )
        .await,
        ["profile-cardinality"]
    );
    let res = c
        .post(s.url("/fhir"))
        .header("content-type", "application/fhir+json")
        .body(r#"{"resourceType": "Patient"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(outcome(res, StatusCode::BAD_REQUEST).await, ["bundle-type"]);
}

#[tokio::test]
async fn every_route_answers_bad_requests_with_the_right_operation_outcome() {
    let s = Server::start(&[("ENGRAFT__SERVER__MAX_BODY_BYTES", "65536")]);
    let c = authed_client();
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let dup = r#"{"resourceType": "Patient", "resourceType": "Patient"}"#.to_string();
    let huge = format!(
        "{{\"resourceType\": \"Patient\", \"id\": \"{}\"}}",
        "a".repeat(100_000)
    );
    for route in [
        "/fhir/$validate",
        "/fhir/Patient/$validate",
        "/fhir/$convert",
        "/fhir",
        "/registry/records",
    ] {
        let post = |ct: &str, body: String| {
            c.post(s.url(route))
                .header("content-type", ct)
                .body(body)
                .send()
        };
        let cases: Vec<(&str, String, StatusCode, &str)> = vec![
            (
                "text/plain",
                "{}".into(),
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "media-type",
            ),
            (
                "application/xml",
                "<Patient/>".into(),
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "media-type",
            ),
            (
                "application/fhir+json",
                "".into(),
                StatusCode::BAD_REQUEST,
                "empty-body",
            ),
            (
                "application/fhir+json",
                "{\"resourceType\": ".into(),
                StatusCode::BAD_REQUEST,
                "json",
            ),
            (
                "application/fhir+json",
                "not json".into(),
                StatusCode::BAD_REQUEST,
                "json",
            ),
            (
                "application/fhir+json",
                deep.clone(),
                StatusCode::BAD_REQUEST,
                "json",
            ),
            (
                "application/fhir+json",
                dup.clone(),
                StatusCode::BAD_REQUEST,
                "json",
            ),
            (
                "application/fhir+json",
                huge.clone(),
                StatusCode::PAYLOAD_TOO_LARGE,
                "too-large",
            ),
        ];
        for (ct, body, status, code) in cases {
            let res = post(ct, body).await.unwrap();
            assert_eq!(outcome(res, status).await, [code], "{route} {ct} {status}");
        }
        // GET on a POST route.
        let res = c.get(s.url(route)).send().await.unwrap();
        assert_eq!(
            outcome(res, StatusCode::METHOD_NOT_ALLOWED).await,
            ["method"]
        );
        // Only JSON answers exist.
        let res = c
            .post(s.url(&format!("{route}?_format=xml")))
            .header("content-type", "application/fhir+json")
            .body(record_text())
            .send()
            .await
            .unwrap();
        assert_eq!(outcome(res, StatusCode::NOT_ACCEPTABLE).await, ["format"]);
    }
    for route in ["/healthz", "/readyz", "/metrics", "/fhir/metadata"] {
        let res = c.delete(s.url(route)).send().await.unwrap();
        assert_eq!(
            outcome(res, StatusCode::METHOD_NOT_ALLOWED).await,
            ["method"],
            "{route}"
        );
    }
    for path in [
        "/",
        "/fhir/Patient/1/$everything",
        "/%00",
        "/fhir/$convert/x",
    ] {
        let res = c.get(s.url(path)).send().await.unwrap();
        assert_eq!(
            outcome(res, StatusCode::NOT_FOUND).await,
            ["not-found"],
            "{path}"
        );
    }
    let res = c
        .get(s.url("/fhir/metadata"))
        .header("accept", "application/fhir+xml")
        .send()
        .await
        .unwrap();
    assert_eq!(outcome(res, StatusCode::NOT_ACCEPTABLE).await, ["format"]);
    // A $convert body that is JSON but not a record object.
    let res = c
        .post(s.url("/fhir/$convert"))
        .header("content-type", "application/json")
        .body("[1, 2]")
        .send()
        .await
        .unwrap();
    assert_eq!(outcome(res, StatusCode::BAD_REQUEST).await, ["record"]);
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_status_and_records_by_outcome() {
    let s = Server::start(&[]);
    let c = authed_client();
    for _ in 0..3 {
        let r = c
            .post(s.url("/fhir/$convert"))
            .header("content-type", "application/json")
            .body(record_text())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let _ = c.get(s.url("/nowhere")).send().await.unwrap();
    let text = metrics_text(&s).await;
    assert!(
        text.contains(
            r#"engraft_http_requests_total{method="POST",route="/fhir/$convert",status="200"} 3"#
        ),
        "{text}"
    );
    assert!(text
        .contains(r#"engraft_http_requests_total{method="GET",route="unmatched",status="404"} 1"#));
    assert!(text.contains(r#"engraft_records_total{outcome="converted"} 3"#));
    assert!(text.contains(
        r#"engraft_http_request_duration_seconds_bucket{method="POST",route="/fhir/$convert",le="#
    ));
}

#[tokio::test]
async fn sigterm_stops_the_server_cleanly() {
    let mut s = Server::start(&[
        ("ENGRAFT__LOG__LEVEL", "info"),
        ("ENGRAFT__LOG__FORMAT", "json"),
    ]);
    let c = authed_client();
    assert_eq!(c.get(s.url("/healthz")).send().await.unwrap().status(), 200);
    let pid = s.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = s.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let mut err = String::new();
    std::io::Read::read_to_string(s.child.stderr.as_mut().unwrap(), &mut err).unwrap();
    let last: Value = serde_json::from_str(err.lines().last().unwrap()).expect("json log lines");
    assert_eq!(last["fields"]["message"], "stopped");
}

#[test]
fn config_check_names_every_problem() {
    let ok = Command::new(env!("CARGO_BIN_EXE_engraft"))
        .args(["config", "check", "--config", "engraft.example.toml"])
        .current_dir(root())
        .output()
        .unwrap();
    assert_eq!(ok.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&ok.stdout).contains("bind = \"127.0.0.1:8080\""));
    let bad = Command::new(env!("CARGO_BIN_EXE_engraft"))
        .args(["config", "check"])
        .current_dir(root())
        .env("ENGRAFT__SERVER__BIND", "nowhere")
        .env("ENGRAFT__LOG__FORMAT", "yaml")
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("config error: server.bind: "), "{err}");
    assert!(err.contains("config error: log.format: "), "{err}");
}

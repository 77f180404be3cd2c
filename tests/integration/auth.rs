//! OAuth 2, inbound: the real server over real HTTP with real keys and signatures. An attack
//! table of tokens that must be refused (and the edges that must pass); scopes per route; the
//! built-in token endpoint driven by an independent JOSE implementation (jwt-simple, pure
//! Rust, no code shared with jsonwebtoken/ring); keygen; logs free of secrets.

use std::collections::HashSet;
use std::process::Command;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use engraft::auth::keys::SigningKey;
use jsonwebtoken::Algorithm;
use jwt_simple::prelude::{
    Claims, ECDSAP384KeyPairLike as _, ES384KeyPair, RS384PublicKey, RSAPublicKeyLike as _,
    VerificationOptions,
};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::server::{authed_client, client_with, idp, outcome, record_text, Server, BASE_URL, IDP};

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

/// Claims of a good IdP token; tests change one thing at a time.
fn claims() -> Value {
    json!({
        "iss": IDP, "sub": "attacker-or-friend", "aud": BASE_URL,
        "iat": now(), "exp": now() + 300, "scope": "system/*.rs",
    })
}

fn with(mut v: Value, key: &str, value: Value) -> Value {
    v[key] = value;
    v
}

/// A compact JWS with any header, signed by `sign` over the signing input.
fn forge(header: Value, claims: &Value, sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let sig = sign(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
}

fn hmac(secret: &[u8], alg: ring::hmac::Algorithm) -> impl Fn(&[u8]) -> Vec<u8> {
    let key = ring::hmac::Key::new(alg, secret);
    move |m| ring::hmac::sign(&key, m).as_ref().to_vec()
}

async fn get(s: &Server, path: &str, auth: Option<&str>) -> reqwest::Response {
    let mut r = reqwest::Client::new().get(s.url(path));
    if let Some(a) = auth {
        r = r.header("authorization", a);
    }
    r.send().await.unwrap()
}

/// 401 with an OperationOutcome and a Bearer challenge; returns the challenge.
async fn refused(res: reqwest::Response) -> String {
    let challenge = res
        .headers()
        .get("www-authenticate")
        .map(|h| h.to_str().unwrap().to_string())
        .unwrap_or_default();
    outcome(res, StatusCode::UNAUTHORIZED).await;
    assert!(
        challenge.starts_with("Bearer realm=\"engraft\""),
        "{challenge}"
    );
    challenge
}

#[tokio::test]
async fn the_attack_table_is_refused_and_the_edges_pass() {
    let s = Server::start(&[]);
    let key = &idp().key;
    let good = |c: &Value| key.sign(c).unwrap();
    let bearer = |t: &str| format!("Bearer {t}");

    // The baseline passes, and so do the edges of the 30 s leeway and both audiences.
    for ok in [
        claims(),
        with(claims(), "exp", json!(now() - 10)),
        with(claims(), "nbf", json!(now() + 10)),
        with(claims(), "aud", json!(format!("{BASE_URL}/fhir"))),
        with(claims(), "aud", json!(["https://other.example", BASE_URL])),
        with(claims(), "scp", json!(["system/Patient.rs"])),
    ] {
        let res = get(&s, "/fhir/Patient", Some(&bearer(&good(&ok)))).await;
        assert_eq!(res.status(), StatusCode::OK, "{ok}");
    }

    // No credentials: a challenge without an error code (RFC 6750 §3.1).
    let challenge = refused(get(&s, "/fhir/Patient", None).await).await;
    assert_eq!(challenge, "Bearer realm=\"engraft\"");

    let rogue = SigningKey::generate("idp-1", Algorithm::ES384).unwrap().0;
    let other_kid = SigningKey::generate("idp-2", Algorithm::ES384).unwrap().0;
    let jwk = key.jwk().to_string();
    let none = {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none","kid":"idp-1"}"#),
            URL_SAFE_NO_PAD.encode(claims().to_string())
        );
        format!("{input}.")
    };
    let cases: Vec<(&str, String)> = vec![
        (
            "not bearer",
            format!("Basic {}", URL_SAFE_NO_PAD.encode("a:b")),
        ),
        ("garbage", bearer("not.a.jwt")),
        ("two parts", bearer("abc.def")),
        ("empty", "Bearer ".into()),
        ("alg none", bearer(&none)),
        (
            "HS256 with the public JWK as secret",
            bearer(&forge(
                json!({"alg": "HS256", "kid": "idp-1"}),
                &claims(),
                hmac(jwk.as_bytes(), ring::hmac::HMAC_SHA256),
            )),
        ),
        (
            "HS384 with the JWK's x as secret",
            bearer(&forge(
                json!({"alg": "HS384", "kid": "idp-1", "typ": "JWT"}),
                &claims(),
                hmac(
                    key.jwk()["x"].as_str().unwrap().as_bytes(),
                    ring::hmac::HMAC_SHA384,
                ),
            )),
        ),
        (
            "rogue key, trusted kid",
            bearer(&rogue.sign(&claims()).unwrap()),
        ),
        ("unknown kid", bearer(&other_kid.sign(&claims()).unwrap())),
        (
            "no kid",
            bearer(&forge(json!({"alg": "ES384"}), &claims(), |_| vec![0; 96])),
        ),
        (
            "ES256 header on an ES384 key",
            bearer(&forge(
                json!({"alg": "ES256", "kid": "idp-1"}),
                &claims(),
                |_| vec![0; 64],
            )),
        ),
        (
            "signature of other claims",
            bearer(&{
                let t = good(&claims());
                let other = good(&with(claims(), "scope", json!("system/*.cruds")));
                let (head_payload, _) = other.rsplit_once('.').unwrap();
                let (_, sig) = t.rsplit_once('.').unwrap();
                format!("{head_payload}.{sig}")
            }),
        ),
        (
            "expired",
            bearer(&good(&with(claims(), "exp", json!(now() - 120)))),
        ),
        (
            "no exp",
            bearer(&good(&{
                let mut c = claims();
                c.as_object_mut().unwrap().remove("exp");
                c
            })),
        ),
        (
            "not yet valid",
            bearer(&good(&with(claims(), "nbf", json!(now() + 120)))),
        ),
        (
            "wrong issuer",
            bearer(&good(&with(claims(), "iss", json!("https://evil.example")))),
        ),
        (
            "no issuer",
            bearer(&good(&{
                let mut c = claims();
                c.as_object_mut().unwrap().remove("iss");
                c
            })),
        ),
        (
            "wrong audience",
            bearer(&good(&with(
                claims(),
                "aud",
                json!("https://elsewhere.example"),
            ))),
        ),
        (
            "no audience",
            bearer(&good(&{
                let mut c = claims();
                c.as_object_mut().unwrap().remove("aud");
                c
            })),
        ),
        (
            "exp as text",
            bearer(&good(&with(claims(), "exp", json!("soon")))),
        ),
        ("huge", bearer(&"a".repeat(20_000))),
    ];
    for (name, auth) in &cases {
        let res = get(&s, "/fhir/Patient", Some(auth)).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{name}");
        let challenge = refused(res).await;
        assert!(
            challenge.contains("error=\"invalid_token\""),
            "{name}: {challenge}"
        );
    }

    // A valid token in the query string is refused, with or without a header.
    let token = good(&claims());
    refused(get(&s, &format!("/fhir/Patient?access_token={token}"), None).await).await;
    refused(
        get(
            &s,
            &format!("/fhir/Patient?access_token={token}"),
            Some(&bearer(&token)),
        )
        .await,
    )
    .await;
}

#[tokio::test]
async fn scopes_are_enforced_per_interaction_on_every_route() {
    let s = Server::start(&[]);
    let token = |scope: &str| idp().token(scope);
    let open = reqwest::Client::new();
    for path in [
        "/healthz",
        "/readyz",
        "/fhir/metadata",
        "/fhir/.well-known/smart-configuration",
        "/.well-known/jwks.json",
    ] {
        let res = open.get(s.url(path)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{path} is open");
    }
    // Every other route refuses an anonymous caller, before looking at the body.
    for (method, path) in [
        ("GET", "/metrics"),
        ("POST", "/fhir/$validate"),
        ("POST", "/fhir/Patient/$validate"),
        ("POST", "/fhir/$convert"),
        ("POST", "/fhir"),
        ("POST", "/registry/records"),
        ("GET", "/registry/records/x"),
        ("PUT", "/registry/records/x"),
        ("DELETE", "/registry/records/x"),
        ("GET", "/registry/records/x/bundle"),
        ("GET", "/registry/records/x/report"),
        ("GET", "/fhir/Observation"),
        ("GET", "/fhir/Observation/x"),
        ("GET", "/fhir/Observation/x/_history"),
        ("GET", "/fhir/Observation/x/_history/1"),
    ] {
        let res = open
            .request(method.parse().unwrap(), s.url(path))
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{method} {path}");
        outcome(res, StatusCode::UNAUTHORIZED).await;
    }

    // (scope, method, path, allowed?)
    let obs_rs = token("system/Observation.rs");
    let v1_read = token("system/*.read");
    let reg_c = token("system/RegistryRecord.c");
    let cases: Vec<(&str, &str, &str, bool, Option<&str>)> = vec![
        (&obs_rs, "GET", "/fhir/Observation", true, None),
        (&obs_rs, "GET", "/fhir/Observation/x", true, None),
        (
            &obs_rs,
            "GET",
            "/fhir/Patient",
            false,
            Some("system/Patient.s"),
        ),
        (
            &obs_rs,
            "GET",
            "/fhir/Patient/x",
            false,
            Some("system/Patient.r"),
        ),
        (
            &obs_rs,
            "POST",
            "/registry/records",
            false,
            Some("system/RegistryRecord.c"),
        ),
        (&obs_rs, "GET", "/metrics", false, Some("system/Metrics.r")),
        (&v1_read, "GET", "/fhir/Patient", true, None),
        (&v1_read, "GET", "/metrics", true, None),
        (&v1_read, "GET", "/registry/records/x", true, None),
        (
            &v1_read,
            "DELETE",
            "/registry/records/x",
            false,
            Some("system/RegistryRecord.d"),
        ),
        (
            &v1_read,
            "POST",
            "/registry/records",
            false,
            Some("system/RegistryRecord.c"),
        ),
        (&reg_c, "POST", "/registry/records", true, None),
        (
            &reg_c,
            "GET",
            "/registry/records/x",
            false,
            Some("system/RegistryRecord.r"),
        ),
        (
            &reg_c,
            "PUT",
            "/registry/records/x",
            false,
            Some("system/RegistryRecord.u"),
        ),
    ];
    for (tok, method, path, allowed, needed) in cases {
        let mut req = client_with(tok).request(method.parse().unwrap(), s.url(path));
        if method == "POST" {
            req = req
                .header("content-type", "application/json")
                .body(record_text());
        }
        let res = req.send().await.unwrap();
        if allowed {
            assert!(
                res.status() != StatusCode::FORBIDDEN && res.status() != StatusCode::UNAUTHORIZED,
                "{method} {path}: {}",
                res.status()
            );
        } else {
            let challenge = res.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .to_string();
            assert!(
                challenge.contains("error=\"insufficient_scope\""),
                "{challenge}"
            );
            assert!(
                challenge.contains(&format!("scope=\"{}\"", needed.unwrap())),
                "{method} {path}: {challenge}"
            );
            let codes = outcome(res, StatusCode::FORBIDDEN).await;
            assert_eq!(codes, ["insufficient-scope"]);
        }
    }
    // `_include` reads another type: the token must allow that too.
    let include = "/fhir/Observation?_include=Observation:patient";
    let res = client_with(&obs_rs)
        .get(s.url(include))
        .send()
        .await
        .unwrap();
    assert_eq!(
        outcome(res, StatusCode::FORBIDDEN).await,
        ["insufficient-scope"]
    );
    let both = token("system/Observation.rs system/Patient.r");
    let res = client_with(&both).get(s.url(include)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);

    // Scopes Engraft does not honour grant nothing.
    for scope in [
        "patient/*.read",
        "user/*.cruds",
        "system/Patient.rs?identifier=x",
        "system/Patient.sr",
        "openid",
    ] {
        let res = client_with(&token(scope))
            .get(s.url("/fhir/Patient"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{scope}");
    }
}

#[tokio::test]
async fn a_jwks_url_that_times_out_is_a_503_not_a_hang_nor_a_pass() {
    let idp_server = wiremock::MockServer::start().await;
    let slow_key = SigningKey::generate("slow-1", Algorithm::RS256).unwrap().0;
    wiremock::Mock::given(wiremock::matchers::path("/jwks"))
        .respond_with(
            wiremock::ResponseTemplate::new(200)
                .set_body_json(engraft::auth::keys::jwks([&slow_key]))
                .set_delay(Duration::from_secs(4)),
        )
        .mount(&idp_server)
        .await;
    let extra = format!(
        "jwks_timeout_secs = 1\njwks_refresh_interval_secs = 3600\n[[auth.issuers]]\nissuer = \"https://slow.example\"\njwks = \"{}/jwks\"\nalgorithms = [\"RS256\"]\n",
        idp_server.uri()
    );
    let s = Server::start_with(&extra, &[], &[]);
    let c = json!({"iss": "https://slow.example", "sub": "x", "aud": BASE_URL, "exp": now() + 300, "scope": "system/*.rs"});
    let token = slow_key.sign(&c).unwrap();
    for _ in 0..2 {
        // The first request waits for the timeout; the second is answered from the failure
        // remembered for the refresh interval, without fetching again.
        let started = std::time::Instant::now();
        let res = get(&s, "/fhir/Patient", Some(&format!("Bearer {token}"))).await;
        assert_eq!(res.headers()["retry-after"], "30");
        let codes = outcome(res, StatusCode::SERVICE_UNAVAILABLE).await;
        assert_eq!(codes, ["keys-unavailable"]);
        assert!(started.elapsed() < Duration::from_secs(4));
    }
    assert_eq!(idp_server.received_requests().await.unwrap().len(), 1);
    // The other issuer's tokens are unaffected.
    let ok = authed_client()
        .get(s.url("/fhir/Patient"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
}

#[tokio::test]
async fn an_unknown_kid_refetches_the_jwks_at_most_once_per_interval() {
    let idp_server = wiremock::MockServer::start().await;
    let k1 = SigningKey::generate("k1", Algorithm::ES384).unwrap().0;
    let k2 = SigningKey::generate("k2", Algorithm::ES384).unwrap().0;
    wiremock::Mock::given(wiremock::matchers::path("/jwks"))
        .respond_with(
            wiremock::ResponseTemplate::new(200)
                .set_body_json(engraft::auth::keys::jwks([&k1, &k2])),
        )
        .mount(&idp_server)
        .await;
    let extra = format!(
        "jwks_refresh_interval_secs = 3600\n[[auth.issuers]]\nissuer = \"https://rotating.example\"\njwks = \"{}/jwks\"\nalgorithms = [\"ES384\"]\n",
        idp_server.uri()
    );
    let s = Server::start_with(&extra, &[], &[]);
    let c = json!({"iss": "https://rotating.example", "sub": "x", "aud": BASE_URL, "exp": now() + 300, "scope": "system/*.rs"});
    for k in [&k1, &k2, &k1] {
        let res = get(
            &s,
            "/fhir/Patient",
            Some(&format!("Bearer {}", k.sign(&c).unwrap())),
        )
        .await;
        assert_eq!(res.status(), StatusCode::OK);
    }
    // A flood of unknown kids costs the IdP nothing more.
    for i in 0..20 {
        let stranger = SigningKey::generate(&format!("x{i}"), Algorithm::ES384)
            .unwrap()
            .0;
        let res = get(
            &s,
            "/fhir/Patient",
            Some(&format!("Bearer {}", stranger.sign(&c).unwrap())),
        )
        .await;
        refused(res).await;
    }
    assert_eq!(idp_server.received_requests().await.unwrap().len(), 1);
}

/// `engraft keygen` into `dir`; returns the PEM and the JWKS.
fn keygen(dir: &std::path::Path, alg: &str, kid: &str) -> (String, Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_engraft"))
        .args(["keygen", "--alg", alg, "--kid", kid, "--out"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pem_path = dir.join(format!("{kid}.key.pem"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&pem_path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the private key is owner-only");
    }
    let jwks: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join(format!("{kid}.jwks.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(jwks["keys"][0]["kid"], kid);
    assert_eq!(jwks["keys"][0]["alg"], alg);
    assert!(
        jwks["keys"][0].get("d").is_none(),
        "no private part in the JWKS"
    );
    // Never overwrites.
    let again = Command::new(env!("CARGO_BIN_EXE_engraft"))
        .args(["keygen", "--alg", alg, "--kid", kid, "--out"])
        .arg(dir)
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(2));
    (std::fs::read_to_string(pem_path).unwrap(), jwks)
}

/// A client assertion signed by jwt-simple (not Engraft's code).
fn assertion(pem: &str, kid: &str, iss: &str, sub: &str, aud: &str, valid: Duration) -> String {
    let key = ES384KeyPair::from_pem(pem).unwrap().with_key_id(kid);
    let claims = Claims::create(valid.into())
        .with_issuer(iss)
        .with_subject(sub)
        .with_audience(aud)
        .with_jwt_id(uuid::Uuid::new_v4().to_string());
    key.sign(claims).unwrap()
}

struct TokenServer {
    server: Server,
    client_pem: String,
    dir: tempfile::TempDir,
}

fn token_server(env: &[(&str, &str)]) -> TokenServer {
    let dir = tempfile::tempdir().unwrap();
    let (client_pem, _) = keygen(dir.path(), "ES384", "c1");
    keygen(dir.path(), "RS384", "engraft-new");
    keygen(dir.path(), "ES384", "engraft-old");
    let p = |f: &str| dir.path().join(f).display().to_string();
    let extra = format!(
        r#"
[[auth.signing_keys]]
kid = "engraft-new"
alg = "RS384"
file = {new:?}
[[auth.signing_keys]]
kid = "engraft-old"
alg = "ES384"
file = {old:?}
retired_at = "{retired}"
[[auth.signing_keys]]
kid = "engraft-ancient"
alg = "ES384"
file = {old:?}
retired_at = "2020-01-01T00:00:00Z"
[[auth.clients]]
client_id = "c1"
jwks = {jwks:?}
scopes = ["system/*.rs", "system/RegistryRecord.cr"]
algorithms = ["ES384"]
"#,
        new = p("engraft-new.key.pem"),
        old = p("engraft-old.key.pem"),
        jwks = p("c1.jwks.json"),
        retired = chrono::Utc::now().to_rfc3339(),
    );
    TokenServer {
        server: Server::start_with(&extra, &[], env),
        client_pem,
        dir,
    }
}

async fn ask_token(
    s: &Server,
    form: &[(&str, &str)],
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let res = reqwest::Client::new()
        .post(s.url("/auth/token"))
        .form(form)
        .send()
        .await
        .unwrap();
    let (status, headers) = (res.status(), res.headers().clone());
    (status, headers, res.json().await.unwrap())
}

/// (name, form fields changed, expected status, expected OAuth error).
type RefusalCase = (
    &'static str,
    Vec<(&'static str, String)>,
    StatusCode,
    &'static str,
);

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

#[tokio::test]
async fn the_token_endpoint_grants_smart_backend_services_clients_and_refuses_the_rest() {
    let ts = token_server(&[]);
    let s = &ts.server;
    let token_url = format!("{BASE_URL}/auth/token");
    let five = Duration::from_secs(290);
    let good = |scope: &'static str| {
        let a = assertion(&ts.client_pem, "c1", "c1", "c1", &token_url, five);
        (a, scope)
    };

    let (a, scope) = good("system/Patient.rs system/RegistryRecord.c");
    let form = [
        ("grant_type", "client_credentials"),
        ("client_assertion_type", JWT_BEARER),
        ("client_assertion", a.as_str()),
        ("scope", scope),
    ];
    let (status, headers, body) = ask_token(s, &form).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 300);
    assert_eq!(body["scope"], scope);
    let access = body["access_token"].as_str().unwrap().to_string();

    // Interop: the access token verifies with jwt-simple against Engraft's published JWKS.
    let jwks: Value = reqwest::get(s.url("/.well-known/jwks.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(
        kids,
        ["engraft-new", "engraft-old"],
        "long-retired keys are not published"
    );
    let new = &jwks["keys"][0];
    let n = URL_SAFE_NO_PAD.decode(new["n"].as_str().unwrap()).unwrap();
    let e = URL_SAFE_NO_PAD.decode(new["e"].as_str().unwrap()).unwrap();
    let verifier = RS384PublicKey::from_components(&n, &e).unwrap();
    let opts = VerificationOptions {
        allowed_issuers: Some(HashSet::from([BASE_URL.to_string()])),
        allowed_audiences: Some(HashSet::from([BASE_URL.to_string()])),
        ..Default::default()
    };
    let verified = verifier
        .verify_token::<Value>(&access, Some(opts))
        .expect("Engraft's token verifies independently");
    assert_eq!(verified.subject.as_deref(), Some("c1"));

    // The token works within its scopes, and the audit log names the client.
    let c = client_with(&access);
    assert_eq!(
        c.get(s.url("/fhir/Patient")).send().await.unwrap().status(),
        200
    );
    assert_eq!(
        c.get(s.url("/fhir/Observation"))
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    let created = c
        .post(s.url("/registry/records"))
        .header("content-type", "application/json")
        .body(record_text())
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let mut db = <sqlx::SqliteConnection as sqlx::Connection>::connect(&s.db_url)
        .await
        .unwrap();
    let actors: Vec<(String,)> = sqlx::query_as("SELECT actor FROM audit")
        .fetch_all(&mut db)
        .await
        .unwrap();
    assert!(
        !actors.is_empty() && actors.iter().all(|(a,)| a == "c1"),
        "{actors:?}"
    );

    // The same assertion again is a replay.
    let (status, _, body) = ask_token(s, &form).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client"))
    );
    assert!(body["error_description"].as_str().unwrap().contains("jti"));

    // The refusals, each per RFC 6749 §5.2.
    let pem = &ts.client_pem;
    let stranger = SigningKey::generate("c1", Algorithm::ES384).unwrap();
    let hs = forge(
        json!({"alg": "HS384", "kid": "c1"}),
        &json!({"iss": "c1", "sub": "c1", "aud": token_url, "exp": now() + 60, "jti": "h"}),
        hmac(b"c1", ring::hmac::HMAC_SHA384),
    );
    let cases: Vec<RefusalCase> = vec![
        (
            "scope escalation",
            vec![("scope", "system/*.cruds".into())],
            StatusCode::BAD_REQUEST,
            "invalid_scope",
        ),
        (
            "patient scope",
            vec![("scope", "patient/*.read".into())],
            StatusCode::BAD_REQUEST,
            "invalid_scope",
        ),
        ("no scope", vec![("scope", "".into())], StatusCode::BAD_REQUEST, "invalid_scope"),
        (
            "wrong grant",
            vec![("grant_type", "password".into())],
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
        ),
        (
            "wrong assertion type",
            vec![("client_assertion_type", "urn:x".into())],
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "wrong aud",
            vec![("client_assertion", assertion(pem, "c1", "c1", "c1", BASE_URL, five))],
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            "exp ten minutes ahead",
            vec![(
                "client_assertion",
                assertion(pem, "c1", "c1", "c1", &token_url, Duration::from_secs(600)),
            )],
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            "iss is not sub",
            vec![("client_assertion", assertion(pem, "c1", "c1", "c2", &token_url, five))],
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            "unknown client",
            vec![("client_assertion", assertion(pem, "c1", "c9", "c9", &token_url, five))],
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            "unknown kid",
            vec![("client_assertion", assertion(pem, "c7", "c1", "c1", &token_url, five))],
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            "another key with the client's kid",
            vec![(
                "client_assertion",
                stranger
                    .0
                    .sign(&json!({"iss": "c1", "sub": "c1", "aud": token_url, "exp": now() + 60, "jti": "s"}))
                    .unwrap(),
            )],
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        ("HMAC assertion", vec![("client_assertion", hs)], StatusCode::UNAUTHORIZED, "invalid_client"),
    ];
    for (name, changes, status, error) in cases {
        let fresh = assertion(pem, "c1", "c1", "c1", &token_url, five);
        let mut form: Vec<(&str, String)> = vec![
            ("grant_type", "client_credentials".into()),
            ("client_assertion_type", JWT_BEARER.into()),
            ("client_assertion", fresh),
            ("scope", "system/Patient.rs".into()),
        ];
        for (k, v) in changes {
            form.iter_mut().find(|(fk, _)| *fk == k).unwrap().1 = v;
        }
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (got, headers, body) = ask_token(s, &form).await;
        assert_eq!(
            (got, body["error"].as_str()),
            (status, Some(error)),
            "{name}: {body}"
        );
        assert!(body["error_description"].is_string(), "{name}");
        assert_eq!(headers["cache-control"], "no-store");
    }
    // Not a form at all.
    let res = reqwest::Client::new()
        .post(s.url("/auth/token"))
        .json(&json!({"grant_type": "client_credentials"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");

    // Discovery advertises the endpoint.
    let smart: Value = reqwest::get(s.url("/fhir/.well-known/smart-configuration"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(smart["token_endpoint"], token_url);
    assert!(smart["capabilities"]
        .as_array()
        .unwrap()
        .contains(&json!("client-confidential-asymmetric")));
    drop(ts.dir);
}

#[tokio::test]
async fn logs_of_a_full_run_hold_no_token_assertion_or_key() {
    let ts = token_server(&[("ENGRAFT__LOG__LEVEL", "debug")]);
    let s = ts.server;
    let token_url = format!("{BASE_URL}/auth/token");
    // Debug logging everywhere, to be sure.
    let a = assertion(
        &ts.client_pem,
        "c1",
        "c1",
        "c1",
        &token_url,
        Duration::from_secs(200),
    );
    let form = [
        ("grant_type", "client_credentials"),
        ("client_assertion_type", JWT_BEARER),
        ("client_assertion", a.as_str()),
        ("scope", "system/*.rs"),
    ];
    let (_, _, body) = ask_token(&s, &form).await;
    let access = body["access_token"].as_str().unwrap().to_string();
    let _ = ask_token(&s, &form).await; // a replay, logged as refused
    let c = client_with(&access);
    c.get(s.url("/fhir/Patient")).send().await.unwrap();
    c.get(s.url("/fhir/Patient?access_token=leak"))
        .send()
        .await
        .unwrap();
    reqwest::Client::new()
        .get(s.url("/fhir/Patient"))
        .bearer_auth(format!("{access}x"))
        .send()
        .await
        .unwrap();
    let mut s = s;
    let _ = Command::new("kill")
        .args(["-TERM", &s.child.id().to_string()])
        .status();
    let _ = s.child.wait();
    let mut logs = String::new();
    std::io::Read::read_to_string(s.child.stderr.as_mut().unwrap(), &mut logs).unwrap();
    assert!(
        logs.contains("token request refused"),
        "the run was logged: {logs}"
    );
    let pem_body: String = ts
        .client_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    for (what, secret) in [
        ("access token", access.as_str()),
        ("its signature", access.rsplit('.').next().unwrap()),
        ("client assertion", a.as_str()),
        ("assertion signature", a.rsplit('.').next().unwrap()),
        ("private key", &pem_body[..40]),
    ] {
        assert!(!logs.contains(secret), "the logs hold the {what}");
    }
}

#[test]
fn insecure_dev_mode_refuses_a_public_bind() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_engraft"))
        .args(["serve", "--insecure-dev-no-auth"])
        .env("ENGRAFT__SERVER__BIND", "0.0.0.0:0")
        .env(
            "ENGRAFT__STORE__URL",
            format!("sqlite://{}", dir.path().join("x.db").display()),
        )
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("loopback only"));
}

#[tokio::test]
async fn insecure_dev_mode_lets_loopback_callers_through_and_says_so_each_time() {
    let mut s = Server::start_with("", &["--insecure-dev-no-auth"], &[]);
    let res = reqwest::Client::new()
        .get(s.url("/fhir/Patient"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let _ = s.child.kill();
    let _ = s.child.wait();
    let mut logs = String::new();
    std::io::Read::read_to_string(s.child.stderr.as_mut().unwrap(), &mut logs).unwrap();
    assert!(logs.contains("AUTHENTICATION IS DISABLED"), "{logs}");
    assert!(logs.contains("request let through unchecked"), "{logs}");
}

/// README's worked example, step by step: keygen, register, get a token with `engraft token`
/// (discovering the endpoint), call the API with it.
#[tokio::test]
async fn the_worked_example_keygen_register_token_call() {
    let dir = tempfile::tempdir().unwrap();
    keygen(dir.path(), "ES384", "uploader-1");
    let port = crate::helpers::free_port();
    let bind = format!("127.0.0.1:{port}");
    let base = format!("http://{bind}");
    let extra = format!(
        "[[auth.clients]]\nclient_id = \"uploader\"\njwks = {:?}\nscopes = [\"system/RegistryRecord.c\", \"system/*.rs\"]\n",
        dir.path().join("uploader-1.jwks.json").display().to_string()
    );
    let s = Server::start_with(
        &extra,
        &[],
        &[
            ("ENGRAFT__SERVER__BIND", &bind),
            ("ENGRAFT__AUTH__BASE_URL", &base),
        ],
    );
    let key = dir.path().join("uploader-1.key.pem");
    let token = |scope: &str| {
        Command::new(env!("CARGO_BIN_EXE_engraft"))
            .args([
                "token",
                "--fhir-base",
                &format!("{base}/fhir"),
                "--client-id",
                "uploader",
            ])
            .args(["--kid", "uploader-1", "--scope", scope, "--key"])
            .arg(&key)
            .output()
            .unwrap()
    };
    let out = token("system/RegistryRecord.c system/Observation.rs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let access = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let c = client_with(&access);
    let created = c
        .post(s.url("/registry/records"))
        .header("content-type", "application/json")
        .body(record_text())
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let found = c
        .get(s.url("/fhir/Observation?_count=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(found.status(), StatusCode::OK);
    // Asking for more than the registration allows fails with the server's reason.
    let out = token("system/RegistryRecord.cruds");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("invalid_scope"), "{err}");
}

//! OAuth 2, outbound: Engraft's token providers against a token endpoint that is not Engraft's
//! code (a wiremock server whose responder verifies client assertions with jwt-simple, an
//! independent JOSE implementation) over real HTTP on 127.0.0.1.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use engraft::auth::keys::SigningKey;
use engraft::auth::outbound::{Grant, OutboundError, TokenProvider, TokenProviders, TokenUrl};
use engraft::auth::secret::Secret;
use jsonwebtoken::Algorithm;
use jwt_simple::prelude::{ECDSAP384PublicKeyLike as _, ES384KeyPair, VerificationOptions};
use serde_json::{json, Value};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

fn form(req: &Request) -> Vec<(String, String)> {
    serde_urlencoded::from_bytes(&req.body).unwrap()
}

fn field<'a>(f: &'a [(String, String)], k: &str) -> Option<&'a str> {
    f.iter().find(|(fk, _)| fk == k).map(|(_, v)| v.as_str())
}

/// A token endpoint: checks each request with `check`, counts them, answers `tok-<n>`.
struct TokenEndpoint<F> {
    count: Arc<AtomicUsize>,
    expires_in: u64,
    check: F,
}

impl<F: Fn(&Request) -> Result<(), String> + Send + Sync + 'static> Respond for TokenEndpoint<F> {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        if let Err(why) = (self.check)(req) {
            return ResponseTemplate::new(401)
                .set_body_json(json!({"error": "invalid_client", "error_description": why}));
        }
        let n = self.count.fetch_add(1, Ordering::SeqCst) + 1;
        ResponseTemplate::new(200)
            // A slow endpoint, so concurrent callers really overlap with the refresh.
            .set_delay(Duration::from_millis(50))
            .set_body_json(json!({
                "access_token": format!("tok-{n}"), "token_type": "Bearer",
                "expires_in": self.expires_in, "scope": "system/*.rs",
            }))
    }
}

struct Client {
    pem: String,
    key: SigningKey,
}

fn smart_client() -> Client {
    let (key, pem) = SigningKey::generate("engraft-client-1", Algorithm::ES384).unwrap();
    Client {
        pem: pem.expose().to_string(),
        key,
    }
}

/// Verifies an Engraft client assertion with jwt-simple: signature, iss = sub = client id,
/// aud = the token URL, exp within five minutes, a jti never seen, the kid.
fn smart_check(
    pem: &str,
    token_url: String,
) -> impl Fn(&Request) -> Result<(), String> + Send + Sync + 'static {
    let public = ES384KeyPair::from_pem(pem).unwrap().public_key();
    let seen = Mutex::new(HashSet::new());
    move |req| {
        let f = form(req);
        if field(&f, "grant_type") != Some("client_credentials")
            || field(&f, "client_assertion_type")
                != Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
        {
            return Err("grant".into());
        }
        let assertion = field(&f, "client_assertion").ok_or("no assertion")?;
        let opts = VerificationOptions {
            allowed_issuers: Some(HashSet::from(["engraft-at-hospital".to_string()])),
            allowed_audiences: Some(HashSet::from([token_url.clone()])),
            required_subject: Some("engraft-at-hospital".into()),
            required_key_id: Some("engraft-client-1".into()),
            max_validity: Some(Duration::from_secs(300).into()),
            ..Default::default()
        };
        let claims = public
            .verify_token::<Value>(assertion, Some(opts))
            .map_err(|e| format!("assertion: {e}"))?;
        let jti = claims.jwt_id.ok_or("no jti")?;
        if !seen.lock().unwrap().insert(jti) {
            return Err("replayed jti".into());
        }
        let exp = claims.expires_at.ok_or("no exp")?.as_secs();
        let now = jsonwebtoken::get_current_timestamp();
        if exp > now + 300 {
            return Err("exp too far".into());
        }
        Ok(())
    }
}

async fn mount_token(
    server: &MockServer,
    expires_in: u64,
    check: impl Fn(&Request) -> Result<(), String> + Send + Sync + 'static,
) -> Arc<AtomicUsize> {
    let count = Arc::new(AtomicUsize::new(0));
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .respond_with(TokenEndpoint {
            count: count.clone(),
            expires_in,
            check,
        })
        .mount(server)
        .await;
    count
}

fn provider(url: TokenUrl, grant: Grant, margin: u64) -> TokenProvider {
    TokenProvider::new(
        reqwest::Client::new(),
        url,
        grant,
        "system/*.rs",
        Duration::from_secs(margin),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_calls_make_one_token_request_per_ttl() {
    let ehr = MockServer::start().await;
    let client = smart_client();
    let token_url = format!("{}/oauth/token", ehr.uri());
    let count = mount_token(&ehr, 300, smart_check(&client.pem, token_url.clone())).await;
    // Discovery from the FHIR base, as SMART Backend Services clients do.
    Mock::given(method("GET"))
        .and(path("/fhir/.well-known/smart-configuration"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "token_endpoint": token_url,
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        })))
        .expect(1)
        .mount(&ehr)
        .await;
    Mock::given(method("GET"))
        .and(path("/fhir/Patient"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"resourceType": "Bundle"})))
        .mount(&ehr)
        .await;

    let providers = TokenProviders::default();
    let url = TokenUrl::Discover {
        fhir_base: format!("{}/fhir", ehr.uri()),
    };
    let key = client.key;
    let p = providers.get(&url, "engraft-at-hospital", "system/*.rs", || {
        provider(
            url.clone(),
            Grant::SmartBackend {
                client_id: "engraft-at-hospital".into(),
                key,
            },
            60,
        )
    });
    let mut calls = Vec::new();
    for _ in 0..1000 {
        let p = p.clone();
        let base = ehr.uri();
        calls.push(tokio::spawn(async move {
            p.send(|http| http.get(format!("{base}/fhir/Patient")))
                .await
                .map(|r| r.status().as_u16())
        }));
    }
    for c in calls {
        assert_eq!(c.await.unwrap().unwrap(), 200);
    }
    assert_eq!(
        count.load(Ordering::SeqCst),
        1,
        "one token request for 1,000 calls"
    );
    // Every call carried that token.
    let reqs = ehr.received_requests().await.unwrap();
    let bearers: HashSet<String> = reqs
        .iter()
        .filter(|r| r.url.path() == "/fhir/Patient")
        .map(|r| r.headers["authorization"].to_str().unwrap().to_string())
        .collect();
    assert_eq!(bearers, HashSet::from(["Bearer tok-1".to_string()]));
    // The same (URL, client, scope) shares the provider.
    let again = providers.get(
        &url,
        "engraft-at-hospital",
        "system/*.rs",
        || unreachable!(),
    );
    assert!(Arc::ptr_eq(&p, &again));
}

#[tokio::test]
async fn tokens_are_refreshed_before_expiry_and_once_after_a_401() {
    let ehr = MockServer::start().await;
    let client = smart_client();
    let token_url = format!("{}/oauth/token", ehr.uri());
    // Tokens live 3 s; refreshed 2 s before: reused for about one second.
    let count = mount_token(&ehr, 3, smart_check(&client.pem, token_url.clone())).await;
    let p = provider(
        TokenUrl::Fixed(token_url),
        Grant::SmartBackend {
            client_id: "engraft-at-hospital".into(),
            key: client.key,
        },
        2,
    );
    assert_eq!(p.token().await.unwrap().expose(), "tok-1");
    assert_eq!(p.token().await.unwrap().expose(), "tok-1");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(
        p.token().await.unwrap().expose(),
        "tok-2",
        "refreshed within the margin"
    );

    // The resource server revokes tok-2: one forced refresh, one retry.
    Mock::given(method("GET"))
        .and(path("/fhir/Patient"))
        .and(wiremock::matchers::header("authorization", "Bearer tok-2"))
        .respond_with(ResponseTemplate::new(401))
        .mount(&ehr)
        .await;
    Mock::given(method("GET"))
        .and(path("/fhir/Patient"))
        .and(wiremock::matchers::header("authorization", "Bearer tok-3"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&ehr)
        .await;
    let base = ehr.uri();
    let res = p
        .send(|http| http.get(format!("{base}/fhir/Patient")))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(count.load(Ordering::SeqCst), 3);

    // A resource server that keeps saying 401 gets exactly one retry, not a loop.
    Mock::given(method("GET"))
        .and(path("/fhir/Condition"))
        .respond_with(ResponseTemplate::new(401))
        .mount(&ehr)
        .await;
    let res = p
        .send(|http| http.get(format!("{base}/fhir/Condition")))
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(count.load(Ordering::SeqCst), 4);
    let condition_calls = ehr
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == "/fhir/Condition")
        .count();
    assert_eq!(condition_calls, 2);
}

fn basic(req: &Request) -> Option<(String, String)> {
    let h = req.headers.get("authorization")?.to_str().ok()?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(h.strip_prefix("Basic ")?)
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (id, secret) = text.split_once(':')?;
    Some((id.to_string(), secret.to_string()))
}

/// Log lines captured from this thread's tracing events (every level, every crate).
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn client_secret_basic_and_the_okta_password_grant_send_what_the_rfcs_say() {
    crate::helpers::keep_tracing_interest();
    let logs = Captured::default();
    let sink = logs.clone();
    let _guard = tracing::subscriber::set_default(
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || sink.clone())
            .finish(),
    );
    let registry = MockServer::start().await;
    let count = mount_token(&registry, 3600, |req| {
        let f = form(req);
        let creds = basic(req).ok_or("no basic auth")?;
        match field(&f, "grant_type") {
            Some("client_credentials") if creds == ("cibmtr-client".into(), "s3cr%3At".into()) => {
                Ok(())
            }
            Some("password")
                if creds == ("okta-app".into(), "app-secret".into())
                    && field(&f, "username") == Some("centre-042")
                    && field(&f, "password") == Some("correct horse") =>
            {
                Ok(())
            }
            _ => Err("bad credentials".into()),
        }
    })
    .await;
    let url = TokenUrl::Fixed(format!("{}/oauth/token", registry.uri()));
    let secret_basic = provider(
        url.clone(),
        Grant::ClientSecretBasic {
            client_id: "cibmtr-client".into(),
            // RFC 6749 §2.3.1: form-encoded before Basic; ':' becomes %3A.
            secret: Secret::new("s3cr:t"),
        },
        60,
    );
    assert_eq!(secret_basic.token().await.unwrap().expose(), "tok-1");
    let password = provider(
        url.clone(),
        Grant::Password {
            client_id: "okta-app".into(),
            client_secret: Secret::new("app-secret"),
            username: "centre-042".into(),
            password: Secret::new("correct horse"),
        },
        60,
    );
    assert_eq!(password.token().await.unwrap().expose(), "tok-2");
    assert_eq!(count.load(Ordering::SeqCst), 2);

    // Wrong credentials: the server's error, and no secret anywhere in it.
    let wrong = provider(
        url,
        Grant::Password {
            client_id: "okta-app".into(),
            client_secret: Secret::new("app-secret"),
            username: "centre-042".into(),
            password: Secret::new("wrong-horse-battery"),
        },
        60,
    );
    let e = wrong.token().await.unwrap_err();
    assert!(
        matches!(&e, OutboundError::Refused { status: 401, error, .. } if error == "invalid_client")
    );
    let shown = format!("{e} {e:?}");
    assert!(
        !shown.contains("wrong-horse-battery") && !shown.contains("app-secret"),
        "{shown}"
    );

    // The full run's logs (Engraft's, reqwest's, hyper's) hold no secret and no token.
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(
        text.contains("token obtained"),
        "the run was logged: {text}"
    );
    for secret in [
        "s3cr",
        "app-secret",
        "correct horse",
        "correct+horse",
        "wrong-horse",
        "tok-1",
        "tok-2",
    ] {
        assert!(!text.contains(secret), "the logs hold {secret}: {text}");
    }
}

#[tokio::test]
async fn an_unreachable_or_odd_token_endpoint_is_a_clear_error() {
    let dead = TokenUrl::Fixed("http://127.0.0.1:9/oauth/token".into());
    let p = provider(
        dead,
        Grant::ClientSecretBasic {
            client_id: "x".into(),
            secret: Secret::new("y"),
        },
        60,
    );
    assert!(matches!(
        p.token().await,
        Err(OutboundError::Unreachable(_))
    ));

    let odd = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"token_type": "mac", "access_token": "t"})),
        )
        .mount(&odd)
        .await;
    let p = provider(
        TokenUrl::Fixed(format!("{}/t", odd.uri())),
        Grant::ClientSecretBasic {
            client_id: "x".into(),
            secret: Secret::new("y"),
        },
        60,
    );
    assert_eq!(p.token().await.unwrap_err(), OutboundError::BadResponse);
    let p = provider(
        TokenUrl::Discover {
            fhir_base: format!("{}/fhir", odd.uri()),
        },
        Grant::ClientSecretBasic {
            client_id: "x".into(),
            secret: Secret::new("y"),
        },
        60,
    );
    assert!(matches!(p.token().await, Err(OutboundError::Discovery(_))));

    // Discovery pointing the client's credentials at plain http elsewhere is refused before
    // anything is sent there.
    let lure = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"token_endpoint": "http://attacker.example/token"})),
        )
        .mount(&lure)
        .await;
    let p = provider(
        TokenUrl::Discover {
            fhir_base: format!("{}/fhir", lure.uri()),
        },
        Grant::ClientSecretBasic {
            client_id: "x".into(),
            secret: Secret::new("y"),
        },
        60,
    );
    match p.token().await {
        Err(OutboundError::Discovery(why)) => assert!(why.contains("not https"), "{why}"),
        other => panic!("{other:?}"),
    }
}

/// `engraft token --destination`: a destination's grant from the configuration, secrets from
/// an environment variable and a file.
#[tokio::test]
async fn a_configured_destination_gets_its_token_from_the_cli() {
    let registry = MockServer::start().await;
    mount_token(&registry, 3600, |req| {
        let f = form(req);
        let ok = basic(req) == Some(("okta-app".into(), "env-secret-123".into()))
            && field(&f, "grant_type") == Some("password")
            && field(&f, "username") == Some("centre-042")
            && field(&f, "password") == Some("file-password-456")
            && field(&f, "scope") == Some("system/*.cru");
        if ok {
            Ok(())
        } else {
            Err("bad credentials".into())
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let password = dir.path().join("password");
    std::fs::write(&password, "file-password-456\n").unwrap();
    let config = dir.path().join("engraft.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[[destinations]]
name = "cibmtr"
base_url = "{base}/fhir"
[destinations.auth]
method = "password"
client_id = "okta-app"
token_url = "{base}/oauth/token"
scope = "system/*.cru"
client_secret = {{ env = "ENGRAFT_TEST_CIBMTR_SECRET" }}
username = "centre-042"
password = {{ file = {password:?} }}
"#,
            base = registry.uri(),
            password = password.display().to_string()
        ),
    )
    .unwrap();
    let run = |secret: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_engraft"))
            .args(["token", "--destination", "cibmtr", "--config"])
            .arg(&config)
            .env("ENGRAFT_TEST_CIBMTR_SECRET", secret)
            .output()
            .unwrap()
    };
    let ok = run("env-secret-123");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert_eq!(String::from_utf8(ok.stdout).unwrap().trim(), "tok-1");
    let refused = run("wrong-secret-789");
    assert_eq!(refused.status.code(), Some(1));
    let err = String::from_utf8(refused.stderr).unwrap();
    assert!(err.contains("HTTP 401 invalid_client"), "{err}");
    for secret in ["wrong-secret-789", "file-password-456"] {
        assert!(!err.contains(secret), "{err}");
    }
    // A destination whose secret is missing is a config error naming it.
    let missing = std::process::Command::new(env!("CARGO_BIN_EXE_engraft"))
        .args(["token", "--destination", "cibmtr", "--config"])
        .arg(&config)
        .env_remove("ENGRAFT_TEST_CIBMTR_SECRET")
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("ENGRAFT_TEST_CIBMTR_SECRET"));
}

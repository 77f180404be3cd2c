//! Outbound TLS: a real TLS server on 127.0.0.1 (rustls, a certificate issued by the test CA in
//! `fixtures/tls/`) as a destination's token endpoint, reached by the `engraft token` process.
//! Engraft trusts Mozilla's roots, the operating system's trust store (read through
//! rustls-native-certs, which honours `SSL_CERT_FILE`) and the destination's `ca_bundle`;
//! nothing else.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn tls_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/tls")
}

/// A token endpoint over TLS: answers every complete HTTP request with a token. Returns its
/// port and the number of requests it answered.
async fn tls_token_endpoint() -> (u16, Arc<AtomicUsize>) {
    let certs = CertificateDer::pem_file_iter(tls_dir().join("server.pem"))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(tls_dir().join("server.key")).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let answered = Arc::new(AtomicUsize::new(0));
    let count = answered.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let (acceptor, count) = (acceptor.clone(), count.clone());
            tokio::spawn(async move {
                // A client that does not trust the certificate ends the handshake here.
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let Ok(n) = tls.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if request_complete(&buf) {
                        break;
                    }
                }
                count.fetch_add(1, Ordering::SeqCst);
                let body = r#"{"access_token":"tls-token","token_type":"Bearer","expires_in":300}"#;
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(answer.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    (port, answered)
}

/// True once the head and a `content-length` body have arrived.
fn request_complete(buf: &[u8]) -> bool {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    buf.len() >= end + 4 + length
}

/// Writes a configuration with one destination whose token endpoint is the TLS server.
fn config(dir: &Path, port: u16, ca_bundle: Option<&Path>) -> PathBuf {
    let secret = dir.join("secret");
    std::fs::write(&secret, "s3cret").unwrap();
    let ca = ca_bundle
        .map(|p| format!("ca_bundle = {:?}\n", p.display().to_string()))
        .unwrap_or_default();
    let file = dir.join("engraft.toml");
    std::fs::write(
        &file,
        format!(
            "[[destinations]]\nname = \"ehr\"\nbase_url = \"https://127.0.0.1:{port}/fhir\"\n{ca}\
             [destinations.auth]\nmethod = \"client-secret-basic\"\nclient_id = \"engraft\"\n\
             token_url = \"https://127.0.0.1:{port}/token\"\nscope = \"system/*.cru\"\n\
             client_secret = {{ file = {:?} }}\n",
            secret.display().to_string()
        ),
    )
    .unwrap();
    file
}

/// `engraft token --destination ehr`, with the system trust store as `system_roots` names it
/// (`None`: the machine's own).
async fn token(config: &Path, system_roots: Option<&Path>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_engraft"));
    cmd.args(["token", "--destination", "ehr", "--config"])
        .arg(config)
        .env_remove("SSL_CERT_FILE")
        .env_remove("SSL_CERT_DIR");
    if let Some(file) = system_roots {
        cmd.env("SSL_CERT_FILE", file);
    }
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

fn assert_got_token(out: &Output) {
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "tls-token");
}

#[tokio::test]
async fn a_private_ca_is_trusted_through_ca_bundle_or_the_system_store_and_nothing_else() {
    let (port, answered) = tls_token_endpoint().await;
    let dir = tempfile::tempdir().unwrap();
    let ca = tls_dir().join("test-ca.pem");

    // Neither Mozilla's roots nor the machine's trust store know the test CA: refused, with a
    // certificate error the engineer can act on, and no request reached the server.
    let plain = config(dir.path(), port, None);
    let out = token(&plain, None).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert!(
        stderr.contains(
            "the server's certificate was refused (issued by a CA Engraft does not trust)"
        ) && stderr.contains("ca_bundle"),
        "the error names the certificate problem: {stderr}"
    );
    assert_eq!(answered.load(Ordering::SeqCst), 0);

    // The destination's ca_bundle.
    let bundled = config(dir.path(), port, Some(&ca));
    assert_got_token(&token(&bundled, None).await);
    assert_eq!(answered.load(Ordering::SeqCst), 1);

    // The operating system's trust store (here pointed at the test CA by SSL_CERT_FILE, as an
    // administrator's update-ca-certificates would add it), without any ca_bundle.
    assert_got_token(&token(&plain, Some(&ca)).await);
    assert_eq!(answered.load(Ordering::SeqCst), 2);
}

//! `engraft token`: get an access token and print it for scripts (`curl -H "Authorization:
//! Bearer $(engraft token ...)"`): as a configured destination (`--destination NAME`, any of
//! its grants), or as a SMART Backend Services client given on the command line (for
//! Engraft's own token endpoint or any EHR's). Also the quickest way to check that a
//! registration works: a refusal is printed with the server's OAuth error.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::auth::keys::{parse_alg, SigningKey};
use crate::auth::outbound::{Grant, TokenProvider, TokenUrl};
use crate::auth::secret::SecretSource;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A `[[destinations]]` entry of the configuration: use its token URL, grant and secrets.
    #[arg(long, conflicts_with_all = ["token_url", "fhir_base", "client_id", "key", "kid", "scope"])]
    destination: Option<String>,
    /// The configuration file holding the destination.
    #[arg(long, requires = "destination")]
    config: Option<PathBuf>,
    /// The token endpoint (for Engraft: <base_url>/auth/token).
    #[arg(long, conflicts_with = "fhir_base")]
    token_url: Option<String>,
    /// Discover the token endpoint from <FHIR_BASE>/.well-known/smart-configuration instead.
    #[arg(long)]
    fhir_base: Option<String>,
    #[arg(long, required_unless_present = "destination")]
    client_id: Option<String>,
    /// The client's private key (PKCS#8 PEM, from `engraft keygen`).
    #[arg(long, required_unless_present = "destination")]
    key: Option<PathBuf>,
    /// The key's kid, as registered.
    #[arg(long, required_unless_present = "destination")]
    kid: Option<String>,
    #[arg(long, default_value = "ES384")]
    alg: String,
    /// Space-separated scopes to ask for.
    #[arg(long, required_unless_present = "destination")]
    scope: Option<String>,
}

fn http() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?)
}

fn fetch(provider: &TokenProvider) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    match runtime.block_on(provider.token()) {
        Ok(t) => {
            println!("{}", t.expose());
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("engraft token: {e}");
            Ok(ExitCode::from(1))
        }
    }
}

fn usage(msg: &str) -> anyhow::Result<ExitCode> {
    eprintln!("engraft token: {msg}");
    Ok(ExitCode::from(2))
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    if let Some(name) = &a.destination {
        let config = match super::serve::load(a.config.as_ref()) {
            Ok(c) => c,
            Err(code) => return Ok(code),
        };
        let Some(d) = config.destinations.iter().find(|d| &d.name == name) else {
            return usage(&format!("no destination named {name} in the configuration"));
        };
        let client = match d.http_client(Duration::from_secs(30)) {
            Ok(c) => c,
            Err(e) => return usage(&e),
        };
        return match d.token_provider(client) {
            Ok(Some(p)) => fetch(&p),
            Ok(None) => usage(&format!(
                "destination {name} uses no token (auth method none)"
            )),
            Err(e) => usage(&e),
        };
    }
    let (Some(client_id), Some(key_file), Some(kid), Some(scope)) =
        (a.client_id, a.key, a.kid, a.scope)
    else {
        return usage("give --client-id, --key, --kid and --scope (or --destination)");
    };
    let url = match (a.token_url, a.fhir_base) {
        (Some(u), _) => TokenUrl::Fixed(u),
        (None, Some(fhir_base)) => TokenUrl::Discover { fhir_base },
        (None, None) => return usage("give --token-url or --fhir-base (or --destination)"),
    };
    let Some(alg) = parse_alg(&a.alg) else {
        return usage("--alg must be RS384, ES384, RS256 or ES256");
    };
    let pem = match SecretSource::File(key_file).load() {
        Ok(p) => p,
        Err(e) => return usage(&e),
    };
    let key = SigningKey::from_pem(&kid, alg, &pem)?;
    let provider = TokenProvider::new(
        http()?,
        url,
        Grant::SmartBackend { client_id, key },
        &scope,
        Duration::ZERO,
    );
    fetch(&provider)
}

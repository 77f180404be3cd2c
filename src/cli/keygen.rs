//! `engraft keygen`: a signing key pair for Engraft's token endpoint or for a client of an EHR.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::auth::keys::{parse_alg, SigningKey};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// RS384 or ES384 (RS256 and ES256 also work).
    #[arg(long, default_value = "ES384")]
    alg: String,
    /// The key id, as it will appear in JWT headers and the JWKS.
    #[arg(long)]
    kid: String,
    /// Directory to write `<kid>.key.pem` (private, mode 0600) and `<kid>.jwks.json` (public).
    #[arg(long, default_value = "keys")]
    out: PathBuf,
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let Some(alg) = parse_alg(&a.alg).filter(|_| !a.kid.is_empty()) else {
        eprintln!("engraft keygen: --alg must be RS384, ES384, RS256 or ES256 and --kid non-empty");
        return Ok(ExitCode::from(2));
    };
    if !a
        .kid
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        eprintln!("engraft keygen: --kid may hold letters, digits, '-', '_' and '.' only");
        return Ok(ExitCode::from(2));
    }
    std::fs::create_dir_all(&a.out)?;
    let private = a.out.join(format!("{}.key.pem", a.kid));
    let public = a.out.join(format!("{}.jwks.json", a.kid));
    if private.exists() {
        eprintln!(
            "engraft keygen: {} exists; choose another --kid (keys are never overwritten)",
            private.display()
        );
        return Ok(ExitCode::from(2));
    }
    let (key, pem) = SigningKey::generate(&a.kid, alg)?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    options.open(&private)?.write_all(pem.expose().as_bytes())?;
    let jwks = crate::auth::keys::jwks([&key]);
    std::fs::write(&public, serde_json::to_string_pretty(&jwks)? + "\n")?;
    println!(
        "private key: {} (mode 0600; keep it secret)",
        private.display()
    );
    println!(
        "public JWKS: {} (register it with the EHR or in Engraft's auth.clients)",
        public.display()
    );
    Ok(ExitCode::SUCCESS)
}

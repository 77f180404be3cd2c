//! Secrets (client secrets, passwords, private keys) as values that never print. They come from
//! files or environment variables named in the configuration, never from the configuration
//! itself, so a config file can be shared and logged.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// A secret value. `Debug` and `Display` show `[redacted]`; only [`Secret::expose`] reads it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Where a secret is read from: `{ env = "VAR" }` or `{ file = "path" }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum SecretSource {
    Env(String),
    File(PathBuf),
}

impl SecretSource {
    /// Reads the secret; a trailing newline in a file is not part of it. The error names the
    /// variable or file, never the value.
    pub fn load(&self) -> Result<Secret, String> {
        match self {
            SecretSource::Env(var) => std::env::var(var)
                .map(Secret)
                .map_err(|_| format!("environment variable {var} is not set")),
            SecretSource::File(path) => std::fs::read_to_string(path)
                .map(|s| Secret(s.trim_end_matches(['\n', '\r']).to_string()))
                .map_err(|e| format!("cannot read {}: {e}", path.display())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s} {s:?}"), "[redacted] [redacted]");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn sources_read_files_and_name_what_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("s");
        std::fs::write(&f, "abc\n").unwrap();
        assert_eq!(SecretSource::File(f).load().unwrap().expose(), "abc");
        let e = SecretSource::Env("ENGRAFT_TEST_SURELY_UNSET".into())
            .load()
            .unwrap_err();
        assert!(e.contains("ENGRAFT_TEST_SURELY_UNSET"));
    }
}

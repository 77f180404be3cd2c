//! Configuration of `engraft serve`: one TOML file (see `engraft.example.toml`), then
//! environment overrides `ENGRAFT__<SECTION>__<KEY>` (for example
//! `ENGRAFT__SERVER__BIND=0.0.0.0:8080`), on top of embedded defaults. Unknown keys are errors,
//! so a typo never silently falls back to a default.

use std::net::SocketAddr;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// The whole configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub store: StoreConfig,
    pub log: LogConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// `sqlite://FILE` (created, WAL, migrated at start) or `postgres://user@host/db`.
    pub url: String,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            url: "sqlite://engraft.db".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address and port to listen on.
    pub bind: String,
    /// HTTP worker threads (0: one per core).
    pub workers: usize,
    /// Largest request body accepted, in bytes (larger: 413).
    pub max_body_bytes: usize,
    /// Seconds in-flight requests get to finish after SIGTERM/SIGINT.
    pub shutdown_timeout_secs: u64,
    /// Most records one POST /registry/records may carry (more: 413).
    pub max_batch: usize,
    /// Largest `_count` a search may ask for (more: 400).
    pub max_count: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `text` or `json`.
    pub format: String,
    /// A tracing filter (`info`, `engraft=debug,actix_web=info`...).
    pub level: String,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            bind: "127.0.0.1:8080".into(),
            workers: 0,
            max_body_bytes: 8 * 1024 * 1024,
            shutdown_timeout_secs: 30,
            max_batch: 100,
            max_count: 1000,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: "text".into(),
            level: "info".into(),
        }
    }
}

/// Why a configuration cannot be used. Each names the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {message}")]
    File { path: String, message: String },
    #[error("{var}: {message}")]
    Env { var: String, message: String },
    #[error("{key}: {message}")]
    Invalid { key: &'static str, message: String },
}

impl Config {
    /// Defaults, then `file` (if given), then `ENGRAFT__*` variables from `env`.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, Vec<ConfigError>> {
        let mut table = toml::Table::new();
        if let Some(path) = file {
            let shown = path.display().to_string();
            let text = std::fs::read_to_string(path).map_err(|e| {
                vec![ConfigError::File {
                    path: shown.clone(),
                    message: e.to_string(),
                }]
            })?;
            table = text.parse::<toml::Table>().map_err(|e| {
                vec![ConfigError::File {
                    path: shown.clone(),
                    message: e.message().to_string(),
                }]
            })?;
        }
        let mut errors = Vec::new();
        let mut vars: Vec<(String, String)> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with("ENGRAFT__"))
            .collect();
        vars.sort();
        for (var, value) in vars {
            let path: Vec<String> = var["ENGRAFT__".len()..]
                .split("__")
                .map(str::to_ascii_lowercase)
                .collect();
            if path.len() != 2 || path.iter().any(String::is_empty) {
                errors.push(ConfigError::Env {
                    var,
                    message: "expected ENGRAFT__<SECTION>__<KEY>".into(),
                });
                continue;
            }
            let section = table
                .entry(path[0].clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            match section.as_table_mut() {
                Some(t) => {
                    t.insert(path[1].clone(), scalar(&value));
                }
                None => errors.push(ConfigError::Env {
                    var,
                    message: format!("{} is not a section", path[0]),
                }),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let config: Config =
            serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
                let source = file
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|| "environment".into());
                vec![ConfigError::File {
                    path: format!("{source}: {}", e.path()),
                    message: e.inner().message().to_string(),
                }]
            })?;
        let problems = config.problems();
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(problems)
        }
    }

    /// Everything wrong with values that parse.
    pub fn problems(&self) -> Vec<ConfigError> {
        let mut out = Vec::new();
        if self.server.bind.parse::<SocketAddr>().is_err() {
            out.push(ConfigError::Invalid {
                key: "server.bind",
                message: "expected an address and port such as 127.0.0.1:8080".into(),
            });
        }
        if self.server.max_body_bytes < 1024 {
            out.push(ConfigError::Invalid {
                key: "server.max_body_bytes",
                message: "must be at least 1024".into(),
            });
        }
        if self.server.workers > 256 {
            out.push(ConfigError::Invalid {
                key: "server.workers",
                message: "must be 0 (one per core) to 256".into(),
            });
        }
        if !(self.store.url.starts_with("sqlite://")
            || self.store.url.starts_with("postgres://")
            || self.store.url.starts_with("postgresql://"))
        {
            out.push(ConfigError::Invalid {
                key: "store.url",
                message: "expected sqlite://FILE or postgres://...".into(),
            });
        }
        if self.server.max_batch == 0 || self.server.max_count == 0 {
            out.push(ConfigError::Invalid {
                key: "server.max_batch/max_count",
                message: "must be at least 1".into(),
            });
        }
        if !matches!(self.log.format.as_str(), "text" | "json") {
            out.push(ConfigError::Invalid {
                key: "log.format",
                message: "must be text or json".into(),
            });
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            out.push(ConfigError::Invalid {
                key: "log.level",
                message: "not a tracing filter (try info or engraft=debug)".into(),
            });
        }
        out
    }
}

/// An environment value as TOML: integers and booleans typed, anything else a string.
fn scalar(v: &str) -> toml::Value {
    if let Ok(i) = v.parse::<i64>() {
        toml::Value::Integer(i)
    } else if let Ok(b) = v.parse::<bool>() {
        toml::Value::Boolean(b)
    } else {
        toml::Value::String(v.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_need_no_file() {
        let c = Config::load(None, env(&[])).unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.server.bind, "127.0.0.1:8080");
    }

    #[test]
    fn the_example_file_is_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("engraft.example.toml");
        assert_eq!(
            Config::load(Some(&path), env(&[])).unwrap(),
            Config::default()
        );
    }

    #[test]
    fn environment_overrides_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(&f, "[server]\nbind = \"127.0.0.1:9000\"\nworkers = 2\n").unwrap();
        let c = Config::load(
            Some(&f),
            env(&[
                ("ENGRAFT__SERVER__BIND", "0.0.0.0:7000"),
                ("ENGRAFT__LOG__FORMAT", "json"),
                ("OTHER", "x"),
            ]),
        )
        .unwrap();
        assert_eq!(c.server.bind, "0.0.0.0:7000");
        assert_eq!(c.server.workers, 2);
        assert_eq!(c.log.format, "json");
    }

    #[test]
    fn every_problem_is_reported_with_its_key() {
        let errs = Config::load(
            None,
            env(&[
                ("ENGRAFT__SERVER__BIND", "localhost"),
                ("ENGRAFT__LOG__FORMAT", "xml"),
                ("ENGRAFT__SERVER__MAX_BODY_BYTES", "10"),
            ]),
        )
        .unwrap_err();
        let text: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert_eq!(text.len(), 3, "{text:?}");
        assert!(text[0].starts_with("server.bind: "));
        assert!(text[1].starts_with("server.max_body_bytes: "));
        assert!(text[2].starts_with("log.format: "));
    }

    #[test]
    fn unknown_keys_and_bad_types_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(&f, "[server]\nbnid = \"127.0.0.1:9000\"\n").unwrap();
        let e = Config::load(Some(&f), env(&[])).unwrap_err();
        assert!(e[0].to_string().contains("bnid"), "{}", e[0]);
        let e = Config::load(None, env(&[("ENGRAFT__SERVER__WORKERS", "many")])).unwrap_err();
        assert!(e[0].to_string().contains("workers") || e[0].to_string().contains("integer"));
        let e = Config::load(None, env(&[("ENGRAFT__BIND", "x")])).unwrap_err();
        assert!(e[0].to_string().starts_with("ENGRAFT__BIND: "));
    }
}

//! `adr serve`'s configuration: a YAML file with the seed's sections, then the seed's
//! environment variables, then command-line flags, each overriding the one before.
//!
//! Every section has defaults, so an empty file (or none) serves `rules/market_stress.adr`
//! on 127.0.0.1:8000 with an embedded SQLite store in `adr-data/`. A key the service does
//! not know, or a value of the wrong type, is an error naming the key and its line: a
//! misspelt setting silently ignored is how services end up misconfigured.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Why a configuration cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a configuration (its YAML, an unknown key, a wrong type).
    #[error("{}: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's report, with the line and the key.
        message: String,
    },
    /// An environment variable has a value its setting cannot take.
    #[error("environment variable {name}={value:?}: {why}")]
    Env {
        /// The variable.
        name: &'static str,
        /// Its value.
        value: String,
        /// What the setting takes.
        why: String,
    },
    /// A setting is out of its range.
    #[error("{setting}: {why}")]
    Invalid {
        /// The setting, as `section.key`.
        setting: &'static str,
        /// What it takes.
        why: String,
    },
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// PostgreSQL; absent: the embedded SQLite store.
    pub database: Option<Database>,
    /// Redis; absent: none.
    pub redis: Option<Redis>,
    /// Where the API listens.
    pub api: Api,
    /// Metrics and traces.
    pub monitoring: Monitoring,
    /// Market settings the crypto detectors read.
    pub crypto: Crypto,
    /// The rule files the engine runs (their includes follow).
    pub rules: Vec<PathBuf>,
    /// Plugin folders; empty: `ADR_PLUGIN_PATH`, then next to the binary.
    pub plugins: Vec<PathBuf>,
    /// The embedded store.
    pub storage: Storage,
    /// Sizes the API accepts.
    pub limits: Limits,
    /// Who may call what.
    pub auth: Auth,
    /// Where the rules' alerts may be delivered (`notify` in a rule).
    pub notify: Notify,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            database: None,
            redis: None,
            api: Api::default(),
            monitoring: Monitoring::default(),
            crypto: Crypto::default(),
            rules: vec![PathBuf::from("rules/market_stress.adr")],
            plugins: Vec::new(),
            storage: Storage::default(),
            limits: Limits::default(),
            auth: Auth::default(),
            notify: Notify::default(),
        }
    }
}

/// Where the rules' `notify` targets may deliver. Rules come from many authors (uploads
/// among them): by default they may log, not write the service's files nor post to any
/// host they like.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Notify {
    /// Hosts `webhook("url")` targets may post to: `host` (any port) or `host:port`.
    /// Empty: none.
    pub webhook_hosts: Vec<String>,
    /// Whether `file("path")` targets are written.
    pub files: bool,
}

impl Notify {
    /// The engine's restriction for these settings.
    pub fn allowed(&self) -> adr_engine::run::notify::Allowed {
        adr_engine::run::notify::Allowed {
            files: self.files,
            webhook_hosts: Some(self.webhook_hosts.clone()),
        }
    }
}

/// PostgreSQL (`DB_HOST`, `DB_PORT`, `DB_NAME`, `DB_USER`, `DB_PASSWORD`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Database {
    /// Host.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Database name.
    pub name: String,
    /// User.
    pub user: String,
    /// Password (hidden by `--print-config`).
    pub password: String,
}

impl Default for Database {
    fn default() -> Self {
        Database {
            host: "localhost".into(),
            port: 5432,
            name: "adr".into(),
            user: "adr".into(),
            password: String::new(),
        }
    }
}

/// Redis (`REDIS_HOST`, `REDIS_PORT`, `REDIS_DB`, `REDIS_PASSWORD`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Redis {
    /// Host.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Database number.
    pub db: u8,
    /// Password (hidden by `--print-config`).
    pub password: String,
    /// The channel every alert is published on (its `adr run` document, as JSON).
    pub channel: String,
    /// The stream every alert is added to (field `alert`), for consumers that must not
    /// miss one while disconnected; empty: none.
    pub stream: String,
    /// About how many entries the stream keeps (`MAXLEN ~`).
    pub stream_max_len: u64,
    /// The hash holding every trained model's current state (field: the model's id),
    /// written after the store, for services that read a model without the database;
    /// empty: none.
    pub models: String,
}

impl Default for Redis {
    fn default() -> Self {
        Redis {
            host: "localhost".into(),
            port: 6379,
            db: 0,
            password: String::new(),
            channel: "adr:alerts".into(),
            stream: "adr:alerts:stream".into(),
            stream_max_len: 100_000,
            models: "adr:models".into(),
        }
    }
}

/// Where the API listens (`API_HOST`, `API_PORT`, `API_WORKERS`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Api {
    /// Address to bind; the default answers this machine only.
    pub host: String,
    /// Port; 0 takes a free one (the log says which).
    pub port: u16,
    /// Threads serving requests; 0: one per core; at most 1024.
    pub workers: usize,
    /// Origins a browser may call the API from (CORS): `https://dash.example.com`, or
    /// `*` for any. Empty: no cross-origin calls.
    pub cors_origins: Vec<String>,
}

impl Default for Api {
    fn default() -> Self {
        Api {
            host: "127.0.0.1".into(),
            port: 8000,
            workers: 0,
            cors_origins: Vec::new(),
        }
    }
}

/// Metrics, traces and logs (`ENABLE_PROMETHEUS`, `PROMETHEUS_PORT`, `ENABLE_JAEGER`,
/// `LOG_FORMAT`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Monitoring {
    /// Serve `/metrics`.
    pub enable_prometheus: bool,
    /// Serve `/metrics` on this port too (the API's port always has it when enabled).
    pub prometheus_port: Option<u16>,
    /// Export traces over OTLP/HTTP (Jaeger, Tempo, any OpenTelemetry collector): a span
    /// per request, with the engine's evaluation and the store's write inside it.
    pub enable_jaeger: bool,
    /// Where traces go: the full URL of an OTLP/HTTP traces endpoint
    /// (`http://jaeger:4318/v1/traces`); absent: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`,
    /// then `OTEL_EXPORTER_OTLP_ENDPOINT`, then `http://localhost:4318/v1/traces`.
    pub otlp_endpoint: Option<String>,
    /// Log lines as `text` or `json` (one object per line, the event's fields at the top).
    pub log_format: LogFormat,
}

impl Default for Monitoring {
    fn default() -> Self {
        Monitoring {
            enable_prometheus: true,
            prometheus_port: None,
            enable_jaeger: false,
            otlp_endpoint: None,
            log_format: LogFormat::Text,
        }
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// For people.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Market settings (`crypto` in the seed's file).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Crypto {
    /// Exchanges whose feeds are accepted.
    pub supported_exchanges: Vec<String>,
    /// The share of events expected to be anomalous, for detectors that take one.
    pub default_contamination: f64,
    /// A price move (as a fraction) past which volatility counts as high.
    pub volatility_threshold: f64,
}

impl Default for Crypto {
    fn default() -> Self {
        Crypto {
            supported_exchanges: vec!["binance".into(), "coinbase".into(), "kraken".into()],
            default_contamination: 0.01,
            volatility_threshold: 0.05,
        }
    }
}

/// The embedded store (`ADR_DATA_DIR`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Storage {
    /// Folder of the SQLite database.
    pub data_dir: PathBuf,
    /// Alerts older than this many days (in event time) are deleted; 0 keeps them all.
    pub retention_days: u32,
    /// Seconds between two checkpoints of the engine's state (one is always taken at a
    /// clean stop); 0: only at stops. A kill loses at most the state since the last one.
    pub checkpoint_seconds: u32,
}

impl Default for Storage {
    fn default() -> Self {
        Storage {
            data_dir: PathBuf::from("adr-data"),
            retention_days: 30,
            checkpoint_seconds: 60,
        }
    }
}

/// Who may call what (`ADR_AUTH_REQUIRED`, `ADR_OPEN_READS`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Auth {
    /// Every call that changes something (events, models, rules) carries an API token
    /// (`Authorization: Bearer TOKEN`; `?token=TOKEN` for a WebSocket). Tokens are made
    /// with `adr serve --new-token NAME` and kept hashed in the store.
    pub required: bool,
    /// Reads (health, alerts, status, metrics) need no token.
    pub open_reads: bool,
}

impl Default for Auth {
    fn default() -> Self {
        Auth {
            required: true,
            open_reads: true,
        }
    }
}

/// Sizes the API accepts.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest request body, in bytes.
    pub max_body_bytes: usize,
    /// Most events in one request.
    pub max_batch_rows: usize,
    /// Most alerts one `GET /alerts` page returns.
    pub max_page: usize,
    /// Alerts a WebSocket subscriber may fall behind by; past it the oldest are dropped
    /// and the subscriber is told how many.
    pub subscriber_queue: usize,
    /// The memory all keys' state may take, in bytes (`docs/state-budget.md`): past it
    /// the least recently seen keys are forgotten (they start cold if they come back), and
    /// rules whose one key does not fit are refused. 0: no budget.
    pub max_state_bytes: u64,
    /// Keys with no event for this many seconds of event time are forgotten; 0: never.
    pub idle_key_seconds: u64,
    /// A client has this many seconds to send a request's headers once it starts (and
    /// to start the next one on a kept-alive connection), and at most this many between
    /// two pieces of a body; past it the request is refused and the connection closed,
    /// so that clients that never finish hold no connection.
    pub read_timeout_seconds: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 16 << 20,
            max_batch_rows: 100_000,
            max_page: 1000,
            subscriber_queue: 1024,
            max_state_bytes: 2 << 30,
            idle_key_seconds: 0,
            read_timeout_seconds: 30,
        }
    }
}

/// What hides a secret in `--print-config`.
const HIDDEN: &str = "********";

impl Config {
    /// The configuration from `file` (or the defaults), with `env` (a variable's value by
    /// name) applied over it, checked.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the file, key and line, or the variable.
    pub fn load(
        file: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let mut config = match file {
            Some(path) => Config::parse(
                path,
                &std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                })?,
            )?,
            None => Config::default(),
        };
        config.apply_env(env)?;
        config.check()?;
        Ok(config)
    }

    /// Parses `text`, the contents of `path`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Parse`] with the line and the key.
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        if text.trim().is_empty() {
            return Ok(Config::default());
        }
        serde_saphyr::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    }

    /// Applies the seed's environment variables.
    fn apply_env(&mut self, env: &dyn Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        fn parsed<T: std::str::FromStr>(
            name: &'static str,
            value: String,
            what: &str,
        ) -> Result<T, ConfigError> {
            value.trim().parse().map_err(|_| ConfigError::Env {
                name,
                value,
                why: format!("not {what}"),
            })
        }
        fn flag(name: &'static str, value: String) -> Result<bool, ConfigError> {
            match value.trim().to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => Ok(true),
                "0" | "false" | "no" | "off" => Ok(false),
                _ => Err(ConfigError::Env {
                    name,
                    value,
                    why: "not true or false".into(),
                }),
            }
        }
        let get = |name: &str| env(name).filter(|v| !v.is_empty());
        if ["DB_HOST", "DB_PORT", "DB_NAME", "DB_USER", "DB_PASSWORD"]
            .iter()
            .any(|n| get(n).is_some())
        {
            let db = self.database.get_or_insert_with(Database::default);
            if let Some(v) = get("DB_HOST") {
                db.host = v;
            }
            if let Some(v) = get("DB_PORT") {
                db.port = parsed("DB_PORT", v, "a port (1-65535)")?;
            }
            if let Some(v) = get("DB_NAME") {
                db.name = v;
            }
            if let Some(v) = get("DB_USER") {
                db.user = v;
            }
            if let Some(v) = get("DB_PASSWORD") {
                db.password = v;
            }
        }
        if ["REDIS_HOST", "REDIS_PORT", "REDIS_DB", "REDIS_PASSWORD"]
            .iter()
            .any(|n| get(n).is_some())
        {
            let redis = self.redis.get_or_insert_with(Redis::default);
            if let Some(v) = get("REDIS_HOST") {
                redis.host = v;
            }
            if let Some(v) = get("REDIS_PORT") {
                redis.port = parsed("REDIS_PORT", v, "a port (1-65535)")?;
            }
            if let Some(v) = get("REDIS_DB") {
                redis.db = parsed("REDIS_DB", v, "a database number (0-255)")?;
            }
            if let Some(v) = get("REDIS_PASSWORD") {
                redis.password = v;
            }
        }
        if let Some(v) = get("API_HOST") {
            self.api.host = v;
        }
        if let Some(v) = get("API_PORT") {
            self.api.port = parsed("API_PORT", v, "a port (0-65535)")?;
        }
        if let Some(v) = get("API_WORKERS") {
            self.api.workers = parsed("API_WORKERS", v, "a number of threads")?;
        }
        if let Some(v) = get("ENABLE_PROMETHEUS") {
            self.monitoring.enable_prometheus = flag("ENABLE_PROMETHEUS", v)?;
        }
        if let Some(v) = get("PROMETHEUS_PORT") {
            self.monitoring.prometheus_port = Some(parsed("PROMETHEUS_PORT", v, "a port")?);
        }
        if let Some(v) = get("ENABLE_JAEGER") {
            self.monitoring.enable_jaeger = flag("ENABLE_JAEGER", v)?;
        }
        if let Some(v) = get("LOG_FORMAT") {
            self.monitoring.log_format = match v.trim().to_ascii_lowercase().as_str() {
                "text" => LogFormat::Text,
                "json" => LogFormat::Json,
                _ => {
                    return Err(ConfigError::Env {
                        name: "LOG_FORMAT",
                        value: v,
                        why: "not text or json".into(),
                    })
                }
            };
        }
        if let Some(v) = get("ADR_AUTH_REQUIRED") {
            self.auth.required = flag("ADR_AUTH_REQUIRED", v)?;
        }
        if let Some(v) = get("ADR_OPEN_READS") {
            self.auth.open_reads = flag("ADR_OPEN_READS", v)?;
        }
        if let Some(v) = get("ADR_DATA_DIR") {
            self.storage.data_dir = PathBuf::from(v);
        }
        if let Some(v) = env("ADR_RULES").filter(|v| !v.is_empty()) {
            self.rules = std::env::split_paths(&v).collect();
        }
        Ok(())
    }

    /// Checks what types cannot: ranges, and what is not built yet.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] naming the setting.
    pub fn check(&self) -> Result<(), ConfigError> {
        let invalid = |setting, why: &str| {
            Err(ConfigError::Invalid {
                setting,
                why: why.to_owned(),
            })
        };
        if self.rules.is_empty() {
            return invalid("rules", "names no rule file; the engine needs at least one");
        }
        let c = self.crypto.default_contamination;
        if !(c > 0.0 && c <= 0.5) {
            return invalid("crypto.default_contamination", "takes a share in (0, 0.5]");
        }
        let v = self.crypto.volatility_threshold;
        if !(v > 0.0 && v.is_finite()) {
            return invalid("crypto.volatility_threshold", "takes a positive fraction");
        }
        for origin in &self.api.cors_origins {
            let plain = origin == "*"
                || (origin.starts_with("http://") || origin.starts_with("https://"))
                    && !origin
                        .trim_end_matches('/')
                        .contains(|c: char| c.is_whitespace())
                    && origin.matches('/').count() == 2;
            if !plain {
                return invalid(
                    "api.cors_origins",
                    &format!(
                        "`{origin}` is not an origin: write scheme://host[:port] (no path), or *"
                    ),
                );
            }
        }
        if self.api.workers > 1024 {
            return invalid("api.workers", "takes 0 (one per core) to 1024");
        }
        if self.limits.max_body_bytes == 0 || self.limits.max_batch_rows == 0 {
            return invalid("limits", "sizes must be at least 1");
        }
        if self.limits.max_page == 0 {
            return invalid("limits.max_page", "must be at least 1");
        }
        if !(1..=1 << 20).contains(&self.limits.subscriber_queue) {
            return invalid("limits.subscriber_queue", "takes 1 to 1048576");
        }
        if !(1..=3600).contains(&self.limits.read_timeout_seconds) {
            return invalid("limits.read_timeout_seconds", "takes 1 to 3600");
        }
        if let Some(redis) = &self.redis {
            if redis.channel.is_empty() {
                return invalid("redis.channel", "names the channel alerts are published on");
            }
            if redis.stream_max_len == 0 {
                return invalid("redis.stream_max_len", "must be at least 1");
            }
        }
        if let Some(endpoint) = &self.monitoring.otlp_endpoint {
            if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
                return invalid(
                    "monitoring.otlp_endpoint",
                    &format!(
                        "`{endpoint}` is not an http(s) URL (http://collector:4318/v1/traces)"
                    ),
                );
            }
        }
        Ok(())
    }

    /// The configuration as YAML, secrets hidden: what `adr serve --print-config` shows.
    pub fn to_yaml_redacted(&self) -> String {
        let mut shown = self.clone();
        if let Some(db) = shown.database.as_mut().filter(|d| !d.password.is_empty()) {
            db.password = HIDDEN.into();
        }
        if let Some(redis) = shown.redis.as_mut().filter(|r| !r.password.is_empty()) {
            redis.password = HIDDEN.into();
        }
        serde_saphyr::to_string(&shown).unwrap_or_else(|e| format!("# cannot show: {e}\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn no_file_is_the_defaults() {
        let c = Config::load(None, &env(&[])).unwrap();
        assert_eq!(c, Config::default());
        assert_eq!((c.api.host.as_str(), c.api.port), ("127.0.0.1", 8000));
    }

    #[test]
    fn the_seeds_sections_parse_and_unknown_keys_are_named_with_their_line() {
        let path = Path::new("config.yaml");
        let text = "api:\n  host: 0.0.0.0\n  port: 9000\n  workers: 4\nmonitoring:\n  enable_prometheus: true\n  prometheus_port: 9090\ncrypto:\n  supported_exchanges: [binance]\n  default_contamination: 0.05\n  volatility_threshold: 0.1\n";
        let c = Config::parse(path, text).unwrap();
        assert_eq!(c.api.port, 9000);
        assert_eq!(c.monitoring.prometheus_port, Some(9090));
        assert_eq!(c.crypto.supported_exchanges, ["binance"]);
        let err = Config::parse(path, "api:\n  host: a\n  prot: 80\n").unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("line 3") && text.contains("unknown field `prot`"),
            "{text}"
        );
        let err = Config::parse(path, "api:\n  port: eighty\n").unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
    }

    #[test]
    fn environment_variables_override_the_file_and_bad_values_are_named() {
        let c = Config::load(None, &env(&[("API_PORT", "8123"), ("API_HOST", "0.0.0.0")])).unwrap();
        assert_eq!((c.api.host.as_str(), c.api.port), ("0.0.0.0", 8123));
        let mut c = Config::default();
        c.apply_env(&env(&[("LOG_FORMAT", "json")])).unwrap();
        assert_eq!(c.monitoring.log_format, LogFormat::Json);
        let err = Config::load(None, &env(&[("API_PORT", "80000")])).unwrap_err();
        assert!(err.to_string().contains("API_PORT=\"80000\""), "{err}");
        let err = Config::load(None, &env(&[("API_WORKERS", "100000")])).unwrap_err();
        assert!(err.to_string().contains("api.workers"), "{err}");
        let err = Config::load(None, &env(&[("ENABLE_PROMETHEUS", "maybe")])).unwrap_err();
        assert!(err.to_string().contains("not true or false"), "{err}");
    }

    #[test]
    fn secrets_are_hidden_when_printed() {
        let c = Config {
            database: Some(Database {
                password: "hunter2".into(),
                ..Database::default()
            }),
            ..Config::default()
        };
        let shown = c.to_yaml_redacted();
        assert!(
            !shown.contains("hunter2") && shown.contains(HIDDEN),
            "{shown}"
        );
    }

    #[test]
    fn ranges_are_refused_and_db_variables_configure_postgresql() {
        let mut c = Config::default();
        c.crypto.default_contamination = 0.0;
        assert!(c
            .check()
            .unwrap_err()
            .to_string()
            .contains("default_contamination"));
        let c = Config::load(None, &env(&[("DB_HOST", "db"), ("DB_PORT", "6432")])).unwrap();
        let db = c.database.unwrap();
        assert_eq!(
            (db.host.as_str(), db.port, db.name.as_str()),
            ("db", 6432, "adr")
        );
        let err = Config::load(None, &env(&[("DB_PORT", "0x")])).unwrap_err();
        assert!(err.to_string().contains("DB_PORT"), "{err}");
    }
}

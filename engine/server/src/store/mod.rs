//! Where the service keeps what it must not lose: alerts (written before the request
//! that fired them is answered), trained models, API tokens' hashes and the versions of
//! uploaded rule files.
//!
//! Two backends keep the same schema, each versioned and migrated at start: an embedded
//! SQLite database in the data folder ([`sqlite`], the default: nothing to install), and
//! PostgreSQL when `database` is configured ([`postgres`]). The rest of the service sees
//! only [`Backend`], through a [`Store`].

use std::path::PathBuf;

pub mod postgres;
pub mod sqlite;

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The data folder cannot be created.
    #[error("cannot create the data folder {}: {source}", path.display())]
    Folder {
        /// The folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// SQLite refused.
    #[error("store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL refused, or cannot be reached.
    #[error("PostgreSQL: {0}")]
    Postgres(#[from] ::postgres::Error),
    /// The database was written by a newer adr.
    #[error("the store {place} has schema version {found}; this adr knows up to {known}: use a newer adr or another database")]
    Newer {
        /// The database file, or `host:port/name`.
        place: String,
        /// Its version.
        found: i64,
        /// The newest this build knows.
        known: i64,
    },
}

/// An alert as stored.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StoredAlert {
    /// Its id: increasing, for paging.
    pub id: i64,
    /// Event time of the firing event, ns.
    pub time_ns: i64,
    /// The alert's name.
    pub alert: String,
    /// The key.
    pub key: String,
    /// The severity's name.
    pub severity: String,
    /// The alert's document, as `adr run` writes it.
    pub doc: serde_json::Value,
}

/// An alert to store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAlert {
    /// Event time, ns.
    pub time_ns: i64,
    /// The alert's name.
    pub alert: String,
    /// The key.
    pub key: String,
    /// The severity's name.
    pub severity: String,
    /// The severity's rank (info 0 … critical 4), for `severity >=` filters.
    pub rank: u8,
    /// The document.
    pub doc: serde_json::Value,
}

/// Which alerts to list.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlertQuery {
    /// Only this key.
    pub key: Option<String>,
    /// Only this alert.
    pub alert: Option<String>,
    /// Only at or after this event time, ns.
    pub from_ns: Option<i64>,
    /// Only before this event time, ns.
    pub to_ns: Option<i64>,
    /// Only at or above this severity rank.
    pub min_rank: Option<u8>,
    /// Only with an id above this (the previous page's `next`).
    pub after_id: Option<i64>,
    /// At most this many.
    pub limit: usize,
}

/// A model to store (see `models`).
#[derive(Debug, Clone, PartialEq)]
pub struct NewModel {
    /// `family.detector`.
    pub detector: String,
    /// Its parameters as given (text, by name).
    pub params: Vec<(String, String)>,
    /// Its input columns.
    pub columns: Vec<String>,
    /// Rows it was trained on.
    pub rows_trained: usize,
    /// Its saved state.
    pub state: Vec<u8>,
}

/// A stored model.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredModel {
    /// Its id (`m` and a number).
    pub id: String,
    /// `family.detector`.
    pub detector: String,
    /// Its parameters as given.
    pub params: Vec<(String, String)>,
    /// Its input columns.
    pub columns: Vec<String>,
    /// Rows it was trained on.
    pub rows_trained: usize,
    /// When it was trained (RFC 3339).
    pub created: String,
    /// Its saved state.
    pub state: Vec<u8>,
}

impl StoredModel {
    /// The model for people and programs: everything but its state's bytes.
    pub fn describe(&self) -> serde_json::Value {
        serde_json::json!({
            "model_id": self.id,
            "detector": self.detector,
            "params": self.params.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone()))).collect::<serde_json::Map<_, _>>(),
            "columns": self.columns,
            "rows_trained": self.rows_trained,
            "created": self.created,
            "state_bytes": self.state.len(),
        })
    }
}

/// A version of an uploaded rule file.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RuleVersion {
    /// Its number, from 1.
    pub version: u64,
    /// Its text; `None` for the version that deleted it.
    pub text: Option<String>,
    /// When (RFC 3339).
    pub created: String,
}

/// A store's operations; each backend keeps the same schema.
pub trait Backend: Send + Sync + std::fmt::Debug {
    /// `sqlite` or `postgresql`.
    fn kind(&self) -> &'static str;

    /// Where it is: the database file, or `host:port/name` (never a password).
    fn location(&self) -> String;

    /// Stores `alerts` in one transaction: all or none.
    ///
    /// # Errors
    ///
    /// The database's.
    fn insert(&self, alerts: &[NewAlert]) -> Result<(), StoreError>;

    /// The alerts `query` selects, oldest first.
    ///
    /// # Errors
    ///
    /// The database's.
    fn alerts(&self, query: &AlertQuery) -> Result<Vec<StoredAlert>, StoreError>;

    /// Alerts stored.
    ///
    /// # Errors
    ///
    /// The database's.
    fn count(&self) -> Result<u64, StoreError>;

    /// Deletes the alerts of event time before `time_ns` (retention); how many.
    ///
    /// # Errors
    ///
    /// The database's.
    fn purge_before(&self, time_ns: i64) -> Result<u64, StoreError>;

    /// The newest event time stored, if any (retention counts back from it).
    ///
    /// # Errors
    ///
    /// The database's.
    fn newest_time(&self) -> Result<Option<i64>, StoreError>;

    /// Stores a model; its id.
    ///
    /// # Errors
    ///
    /// The database's.
    fn insert_model(&self, model: &NewModel) -> Result<String, StoreError>;

    /// The model `id` (`m` and a number), if there is one.
    ///
    /// # Errors
    ///
    /// The database's.
    fn model(&self, id: &str) -> Result<Option<StoredModel>, StoreError>;

    /// Every model, oldest first.
    ///
    /// # Errors
    ///
    /// The database's.
    fn models(&self) -> Result<Vec<StoredModel>, StoreError>;

    /// Replaces the states of models (id, state): all or none, in one transaction; for
    /// each, whether the model is there (a deleted one's state is not written).
    ///
    /// # Errors
    ///
    /// The database's.
    fn update_model_states(&self, states: &[(&str, &[u8])]) -> Result<Vec<bool>, StoreError>;

    /// Deletes a model; whether there was one.
    ///
    /// # Errors
    ///
    /// The database's.
    fn delete_model(&self, id: &str) -> Result<bool, StoreError>;

    /// Stores the hash of an API token named `name`.
    ///
    /// # Errors
    ///
    /// The database's.
    fn insert_token(&self, name: &str, hash: &[u8]) -> Result<(), StoreError>;

    /// The name of the token whose hash is `hash`, if there is one.
    ///
    /// # Errors
    ///
    /// The database's.
    fn token_named(&self, hash: &[u8]) -> Result<Option<String>, StoreError>;

    /// Tokens stored.
    ///
    /// # Errors
    ///
    /// The database's.
    fn token_count(&self) -> Result<u64, StoreError>;

    /// Records a new version of uploaded rule file `name`: its text, or `None` when it was
    /// deleted; the version's number (from 1).
    ///
    /// # Errors
    ///
    /// The database's.
    fn insert_rule_version(&self, name: &str, text: Option<&str>) -> Result<u64, StoreError>;

    /// Version `version` of uploaded rule file `name` (the newest with `None`), if any.
    ///
    /// # Errors
    ///
    /// The database's.
    fn rule_version(
        &self,
        name: &str,
        version: Option<u64>,
    ) -> Result<Option<RuleVersion>, StoreError>;

    /// Replaces the engine's checkpoint with `state` (one kept: the newest).
    ///
    /// # Errors
    ///
    /// The database's.
    fn save_checkpoint(&self, state: &[u8]) -> Result<(), StoreError>;

    /// The engine's newest checkpoint and when it was taken (RFC 3339), if any.
    ///
    /// # Errors
    ///
    /// The database's.
    fn checkpoint(&self) -> Result<Option<(Vec<u8>, String)>, StoreError>;

    /// Whether the database answers (for `/health`).
    ///
    /// # Errors
    ///
    /// The database's.
    fn ping(&self) -> Result<(), StoreError>;
}

/// The store the service runs on: one backend.
#[derive(Debug)]
pub struct Store(Box<dyn Backend>);

impl Store {
    /// The embedded SQLite store in `dir` (created if needed).
    ///
    /// # Errors
    ///
    /// The folder, SQLite, or a schema newer than this build.
    pub fn open(dir: &std::path::Path) -> Result<Store, StoreError> {
        Ok(Store(Box::new(sqlite::Sqlite::open(dir)?)))
    }

    /// PostgreSQL as `database` says, its schema migrated.
    ///
    /// # Errors
    ///
    /// It cannot be reached or refused the login, or its schema is newer than this build.
    pub fn connect(database: &crate::config::Database) -> Result<Store, StoreError> {
        Ok(Store(Box::new(postgres::Postgres::connect(database)?)))
    }

    /// The store `config` names: PostgreSQL when `database` is set, else SQLite in the
    /// data folder.
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open) and [`connect`](Self::connect).
    pub fn from_config(config: &crate::config::Config) -> Result<Store, StoreError> {
        match &config.database {
            Some(database) => Store::connect(database),
            None => Store::open(&config.storage.data_dir),
        }
    }
}

impl std::ops::Deref for Store {
    type Target = dyn Backend;

    fn deref(&self) -> &Self::Target {
        &*self.0
    }
}

/// The row id of model `id` (`m` and a number).
fn model_number(id: &str) -> Option<i64> {
    id.strip_prefix('m').and_then(|n| n.parse().ok())
}

/// The id of the model in row `number`.
fn model_id(number: i64) -> String {
    format!("m{number}")
}

/// A new time stamp for a row (RFC 3339).
fn now() -> String {
    jiff::Timestamp::now().to_string()
}

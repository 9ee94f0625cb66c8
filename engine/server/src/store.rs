//! The embedded store: alerts in a SQLite database in the data folder, written before a
//! request that fired them is answered, so an acknowledged alert is never lost.
//!
//! The schema is versioned (`PRAGMA user_version`) and migrated at open; the database runs
//! in WAL mode, so readers (`GET /alerts`) never wait for the writer.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use rusqlite::{params, Connection, OptionalExtension};

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
    /// The database was written by a newer adr.
    #[error("the store {} has schema version {found}; this adr knows up to {known}: use a newer adr or another data folder", path.display())]
    Newer {
        /// The database file.
        path: PathBuf,
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

/// The schema's migrations, oldest first: the version is how many have run.
const MIGRATIONS: [&str; 4] = [
    "CREATE TABLE alerts (
         id INTEGER PRIMARY KEY AUTOINCREMENT,
         time_ns INTEGER NOT NULL,
         alert TEXT NOT NULL,
         key TEXT NOT NULL,
         severity TEXT NOT NULL,
         rank INTEGER NOT NULL,
         doc TEXT NOT NULL
     );
     CREATE INDEX alerts_by_time ON alerts (time_ns);
     CREATE INDEX alerts_by_key ON alerts (key, time_ns);",
    "CREATE TABLE models (
         id INTEGER PRIMARY KEY AUTOINCREMENT,
         detector TEXT NOT NULL,
         params TEXT NOT NULL,
         columns TEXT NOT NULL,
         rows_trained INTEGER NOT NULL,
         created TEXT NOT NULL,
         state BLOB NOT NULL
     );",
    "CREATE TABLE tokens (
         id INTEGER PRIMARY KEY AUTOINCREMENT,
         name TEXT NOT NULL,
         hash BLOB NOT NULL UNIQUE,
         created TEXT NOT NULL
     );",
    "CREATE TABLE rule_versions (
         id INTEGER PRIMARY KEY AUTOINCREMENT,
         name TEXT NOT NULL,
         version INTEGER NOT NULL,
         text TEXT,
         created TEXT NOT NULL,
         UNIQUE (name, version)
     );",
];

/// The schema version this build writes.
const SCHEMA: i64 = MIGRATIONS.len() as i64;

/// The row id of model `id` (`m` and a number).
fn model_number(id: &str) -> Option<i64> {
    id.strip_prefix('m').and_then(|n| n.parse().ok())
}

/// The id of the model in row `number`.
fn model_id(number: i64) -> String {
    format!("m{number}")
}

/// The store.
#[derive(Debug)]
pub struct Store {
    path: PathBuf,
    conn: Mutex<Connection>,
}

impl Store {
    /// Opens (creating if needed) `adr.sqlite` in `dir`, migrating its schema.
    ///
    /// # Errors
    ///
    /// A [`StoreError`]: the folder, SQLite, or a schema newer than this build.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Folder {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = dir.join("adr.sqlite");
        let conn = Connection::open(&path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version > SCHEMA {
            return Err(StoreError::Newer {
                path,
                found: version,
                known: SCHEMA,
            });
        }
        // Each step takes the schema from its index to the next version.
        for (from, step) in MIGRATIONS
            .iter()
            .enumerate()
            .skip(usize::try_from(version).unwrap_or(0))
        {
            conn.execute_batch(&format!(
                "BEGIN; {step} PRAGMA user_version = {}; COMMIT;",
                from + 1
            ))?;
        }
        Ok(Store {
            path,
            conn: Mutex::new(conn),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Stores `alerts` in one transaction: all or none.
    ///
    /// # Errors
    ///
    /// SQLite's.
    pub fn insert(&self, alerts: &[NewAlert]) -> Result<(), StoreError> {
        if alerts.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO alerts (time_ns, alert, key, severity, rank, doc) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for a in alerts {
                insert.execute(params![
                    a.time_ns,
                    a.alert,
                    a.key,
                    a.severity,
                    a.rank,
                    a.doc.to_string()
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// The alerts `query` selects, oldest first.
    ///
    /// # Errors
    ///
    /// SQLite's.
    pub fn alerts(&self, query: &AlertQuery) -> Result<Vec<StoredAlert>, StoreError> {
        let conn = self.conn();
        let mut statement = conn.prepare_cached(
            "SELECT id, time_ns, alert, key, severity, doc FROM alerts
             WHERE (?1 IS NULL OR key = ?1)
               AND (?2 IS NULL OR alert = ?2)
               AND (?3 IS NULL OR time_ns >= ?3)
               AND (?4 IS NULL OR time_ns < ?4)
               AND (?5 IS NULL OR rank >= ?5)
               AND (?6 IS NULL OR id > ?6)
             ORDER BY id LIMIT ?7",
        )?;
        let limit = i64::try_from(query.limit).unwrap_or(i64::MAX);
        let rows = statement.query_map(
            params![
                query.key,
                query.alert,
                query.from_ns,
                query.to_ns,
                query.min_rank,
                query.after_id,
                limit
            ],
            |r| {
                let doc: String = r.get(5)?;
                Ok(StoredAlert {
                    id: r.get(0)?,
                    time_ns: r.get(1)?,
                    alert: r.get(2)?,
                    key: r.get(3)?,
                    severity: r.get(4)?,
                    doc: serde_json::from_str(&doc).unwrap_or(serde_json::Value::String(doc)),
                })
            },
        )?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// Alerts stored.
    ///
    /// # Errors
    ///
    /// SQLite's.
    pub fn count(&self) -> Result<u64, StoreError> {
        let n: i64 = self
            .conn()
            .query_row("SELECT count(*) FROM alerts", [], |r| r.get(0))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Deletes the alerts of event time before `time_ns` (retention); how many.
    ///
    /// # Errors
    ///
    /// SQLite's.
    pub fn purge_before(&self, time_ns: i64) -> Result<usize, StoreError> {
        Ok(self
            .conn()
            .execute("DELETE FROM alerts WHERE time_ns < ?1", params![time_ns])?)
    }

    /// The newest event time stored, if any (retention counts back from it).
    ///
    /// # Errors
    ///
    /// SQLite's.
    pub fn newest_time(&self) -> Result<Option<i64>, StoreError> {
        Ok(self
            .conn()
            .query_row("SELECT max(time_ns) FROM alerts", [], |r| r.get(0))
            .optional()?
            .flatten())
    }

    /// Stores a model; its id.
    ///
    /// # Errors
    ///
    /// SQLite's.
    pub fn insert_model(&self, model: &NewModel) -> Result<String, StoreError> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO models (detector, params, columns, rows_trained, created, state) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                model.detector,
                serde_json::to_string(&model.params).unwrap_or_default(),
                serde_json::to_string(&model.columns).unwrap_or_default(),
                i64::try_from(model.rows_trained).unwrap_or(i64::MAX),
                jiff::Timestamp::now().to_string(),
                model.state
            ],
        )?;
        Ok(model_id(conn.last_insert_rowid()))
    }

    fn model_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredModel> {
        let params: String = r.get(2)?;
        let columns: String = r.get(3)?;
        let rows: i64 = r.get(4)?;
        Ok(StoredModel {
            id: model_id(r.get(0)?),
            detector: r.get(1)?,
            params: serde_json::from_str(&params).unwrap_or_default(),
            columns: serde_json::from_str(&columns).unwrap_or_default(),
            rows_trained: usize::try_from(rows).unwrap_or(0),
            created: r.get(5)?,
            state: r.get(6)?,
        })
    }

    /// The model `id` (`m` and a number), if there is one.
    ///
    /// # Errors
    ///
    /// SQLite's.
    pub fn model(&self, id: &str) -> Result<Option<StoredModel>, StoreError> {
        let Some(number) = model_number(id) else {
            return Ok(None);
        };
        Ok(self
            .conn()
            .query_row(
                "SELECT id, detector, params, columns, rows_trained, created, state FROM models WHERE id = ?1",
                params![number],
                Store::model_row,
            )
            .optional()?)
    }

    /// Every model, oldest first.
    ///
    /// # Errors
    ///
    /// SQLite's.
    pub fn models(&self) -> Result<Vec<StoredModel>, StoreError> {
        let conn = self.conn();
        let mut statement = conn.prepare_cached(
            "SELECT id, detector, params, columns, rows_trained, created, state FROM models ORDER BY id",
        )?;
        let rows = statement.query_map([], Store::model_row)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// Replaces a model's state.
    ///
    /// # Errors
    ///
    /// SQLite's.
    pub fn update_model_state(&self, id: &str, state: &[u8]) -> Result<(), StoreError> {
        if let Some(number) = model_number(id) {
            self.conn().execute(
                "UPDATE models SET state = ?1 WHERE id = ?2",
                params![state, number],
            )?;
        }
        Ok(())
    }

    /// Deletes a model; whether there was one.
    ///
    /// # Errors
    ///
    /// SQLite's.
    pub fn delete_model(&self, id: &str) -> Result<bool, StoreError> {
        let Some(number) = model_number(id) else {
            return Ok(false);
        };
        Ok(self
            .conn()
            .execute("DELETE FROM models WHERE id = ?1", params![number])?
            > 0)
    }

    /// Stores the hash of an API token named `name`.
    ///
    /// # Errors
    ///
    /// SQLite's.
    pub fn insert_token(&self, name: &str, hash: &[u8]) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT INTO tokens (name, hash, created) VALUES (?1, ?2, ?3)",
            params![name, hash, jiff::Timestamp::now().to_string()],
        )?;
        Ok(())
    }

    /// The name of the token whose hash is `hash`, if there is one.
    ///
    /// # Errors
    ///
    /// SQLite's.
    pub fn token_named(&self, hash: &[u8]) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT name FROM tokens WHERE hash = ?1",
                params![hash],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Tokens stored.
    ///
    /// # Errors
    ///
    /// SQLite's.
    pub fn token_count(&self) -> Result<u64, StoreError> {
        let n: i64 = self
            .conn()
            .query_row("SELECT count(*) FROM tokens", [], |r| r.get(0))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Records a new version of uploaded rule file `name`: its text, or `None` when it was
    /// deleted; the version's number (from 1).
    ///
    /// # Errors
    ///
    /// SQLite's.
    pub fn insert_rule_version(&self, name: &str, text: Option<&str>) -> Result<u64, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let version: i64 = tx.query_row(
            "SELECT coalesce(max(version), 0) + 1 FROM rule_versions WHERE name = ?1",
            params![name],
            |r| r.get(0),
        )?;
        tx.execute(
            "INSERT INTO rule_versions (name, version, text, created) VALUES (?1, ?2, ?3, ?4)",
            params![name, version, text, jiff::Timestamp::now().to_string()],
        )?;
        tx.commit()?;
        Ok(u64::try_from(version).unwrap_or(0))
    }

    /// Version `version` of uploaded rule file `name` (the newest with `None`), if any.
    ///
    /// # Errors
    ///
    /// SQLite's.
    pub fn rule_version(
        &self,
        name: &str,
        version: Option<u64>,
    ) -> Result<Option<RuleVersion>, StoreError> {
        let version = version.map(|v| i64::try_from(v).unwrap_or(i64::MAX));
        Ok(self
            .conn()
            .query_row(
                "SELECT version, text, created FROM rule_versions
                 WHERE name = ?1 AND (?2 IS NULL OR version = ?2)
                 ORDER BY version DESC LIMIT 1",
                params![name, version],
                |r| {
                    let version: i64 = r.get(0)?;
                    Ok(RuleVersion {
                        version: u64::try_from(version).unwrap_or(0),
                        text: r.get(1)?,
                        created: r.get(2)?,
                    })
                },
            )
            .optional()?)
    }

    /// Whether the database answers (for `/health`).
    pub fn ping(&self) -> Result<(), StoreError> {
        self.conn().query_row("SELECT 1", [], |_| Ok(()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(t: i64, key: &str, severity: &str, rank: u8) -> NewAlert {
        NewAlert {
            time_ns: t,
            alert: "stress".into(),
            key: key.into(),
            severity: severity.into(),
            rank,
            doc: serde_json::json!({"alert": "stress", "key": key}),
        }
    }

    #[test]
    fn alerts_survive_a_reopen_and_filter_and_page() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            store
                .insert(&[
                    alert(10, "BTC", "high", 3),
                    alert(20, "ETH", "low", 1),
                    alert(30, "BTC", "critical", 4),
                ])
                .unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.count().unwrap(), 3);
        let all = |q: AlertQuery| store.alerts(&AlertQuery { limit: 10, ..q }).unwrap();
        assert_eq!(all(AlertQuery::default()).len(), 3);
        let btc = all(AlertQuery {
            key: Some("BTC".into()),
            ..AlertQuery::default()
        });
        assert_eq!(btc.iter().map(|a| a.time_ns).collect::<Vec<_>>(), [10, 30]);
        let severe = all(AlertQuery {
            min_rank: Some(3),
            from_ns: Some(15),
            ..AlertQuery::default()
        });
        assert_eq!(severe.len(), 1);
        assert_eq!(severe[0].doc["key"], "BTC");
        let page = store
            .alerts(&AlertQuery {
                limit: 2,
                ..AlertQuery::default()
            })
            .unwrap();
        let next = store
            .alerts(&AlertQuery {
                limit: 2,
                after_id: Some(page[1].id),
                ..AlertQuery::default()
            })
            .unwrap();
        assert_eq!((page.len(), next.len(), next[0].time_ns), (2, 1, 30));
        assert_eq!(store.purge_before(25).unwrap(), 2);
        assert_eq!(store.newest_time().unwrap(), Some(30));
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        drop(Store::open(dir.path()).unwrap());
        let conn = Connection::open(dir.path().join("adr.sqlite")).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        drop(conn);
        let err = Store::open(dir.path()).unwrap_err();
        assert!(err.to_string().contains("schema version 99"), "{err}");
    }
}

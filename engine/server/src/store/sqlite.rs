//! The embedded store: a SQLite database (`adr.sqlite`) in the data folder, nothing to
//! install.
//!
//! The schema is versioned (`PRAGMA user_version`) and migrated at open; the database runs
//! in WAL mode, so readers (`GET /alerts`) never wait for the writer.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use rusqlite::{params, Connection, OptionalExtension};

use super::{
    model_id, model_number, now, AlertQuery, Backend, NewAlert, NewModel, RuleVersion, StoreError,
    StoredAlert, StoredModel,
};

/// The schema's migrations, oldest first: the version is how many have run.
const MIGRATIONS: [&str; 5] = [
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
    "CREATE TABLE checkpoints (
         id INTEGER PRIMARY KEY AUTOINCREMENT,
         created TEXT NOT NULL,
         state BLOB NOT NULL
     );",
];

/// The schema version this build writes.
const SCHEMA: i64 = MIGRATIONS.len() as i64;

/// The SQLite store.
#[derive(Debug)]
pub struct Sqlite {
    path: PathBuf,
    conn: Mutex<Connection>,
}

impl Sqlite {
    /// Opens (creating if needed) `adr.sqlite` in `dir`, migrating its schema.
    ///
    /// # Errors
    ///
    /// A [`StoreError`]: the folder, SQLite, or a schema newer than this build.
    pub fn open(dir: &Path) -> Result<Sqlite, StoreError> {
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
                place: path.display().to_string(),
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
        Ok(Sqlite {
            path,
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
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
}

impl Backend for Sqlite {
    fn kind(&self) -> &'static str {
        "sqlite"
    }

    fn location(&self) -> String {
        self.path.display().to_string()
    }

    fn insert(&self, alerts: &[NewAlert]) -> Result<(), StoreError> {
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

    fn alerts(&self, query: &AlertQuery) -> Result<Vec<StoredAlert>, StoreError> {
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

    fn count(&self) -> Result<u64, StoreError> {
        let n: i64 = self
            .conn()
            .query_row("SELECT count(*) FROM alerts", [], |r| r.get(0))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    fn purge_before(&self, time_ns: i64) -> Result<u64, StoreError> {
        let purged = self
            .conn()
            .execute("DELETE FROM alerts WHERE time_ns < ?1", params![time_ns])?;
        Ok(purged as u64)
    }

    fn newest_time(&self) -> Result<Option<i64>, StoreError> {
        Ok(self
            .conn()
            .query_row("SELECT max(time_ns) FROM alerts", [], |r| r.get(0))
            .optional()?
            .flatten())
    }

    fn insert_model(&self, model: &NewModel) -> Result<String, StoreError> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO models (detector, params, columns, rows_trained, created, state) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                model.detector,
                serde_json::to_string(&model.params).unwrap_or_default(),
                serde_json::to_string(&model.columns).unwrap_or_default(),
                i64::try_from(model.rows_trained).unwrap_or(i64::MAX),
                now(),
                model.state
            ],
        )?;
        Ok(model_id(conn.last_insert_rowid()))
    }

    fn model(&self, id: &str) -> Result<Option<StoredModel>, StoreError> {
        let Some(number) = model_number(id) else {
            return Ok(None);
        };
        Ok(self
            .conn()
            .query_row(
                "SELECT id, detector, params, columns, rows_trained, created, state FROM models WHERE id = ?1",
                params![number],
                Sqlite::model_row,
            )
            .optional()?)
    }

    fn models(&self) -> Result<Vec<StoredModel>, StoreError> {
        let conn = self.conn();
        let mut statement = conn.prepare_cached(
            "SELECT id, detector, params, columns, rows_trained, created, state FROM models ORDER BY id",
        )?;
        let rows = statement.query_map([], Sqlite::model_row)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    fn update_model_states(&self, states: &[(&str, &[u8])]) -> Result<Vec<bool>, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let mut there = Vec::with_capacity(states.len());
        {
            let mut update = tx.prepare_cached("UPDATE models SET state = ?1 WHERE id = ?2")?;
            for (id, state) in states {
                there.push(match model_number(id) {
                    Some(number) => update.execute(params![state, number])? > 0,
                    None => false,
                });
            }
        }
        tx.commit()?;
        Ok(there)
    }

    fn delete_model(&self, id: &str) -> Result<bool, StoreError> {
        let Some(number) = model_number(id) else {
            return Ok(false);
        };
        Ok(self
            .conn()
            .execute("DELETE FROM models WHERE id = ?1", params![number])?
            > 0)
    }

    fn insert_token(&self, name: &str, hash: &[u8]) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT INTO tokens (name, hash, created) VALUES (?1, ?2, ?3)",
            params![name, hash, now()],
        )?;
        Ok(())
    }

    fn token_named(&self, hash: &[u8]) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT name FROM tokens WHERE hash = ?1",
                params![hash],
                |r| r.get(0),
            )
            .optional()?)
    }

    fn token_count(&self) -> Result<u64, StoreError> {
        let n: i64 = self
            .conn()
            .query_row("SELECT count(*) FROM tokens", [], |r| r.get(0))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    fn insert_rule_version(&self, name: &str, text: Option<&str>) -> Result<u64, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let version: i64 = tx.query_row(
            "SELECT coalesce(max(version), 0) + 1 FROM rule_versions WHERE name = ?1",
            params![name],
            |r| r.get(0),
        )?;
        tx.execute(
            "INSERT INTO rule_versions (name, version, text, created) VALUES (?1, ?2, ?3, ?4)",
            params![name, version, text, now()],
        )?;
        tx.commit()?;
        Ok(u64::try_from(version).unwrap_or(0))
    }

    fn rule_version(
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

    fn save_checkpoint(&self, state: &[u8]) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute("DELETE FROM checkpoints", [])?;
        tx.execute(
            "INSERT INTO checkpoints (created, state) VALUES (?1, ?2)",
            params![now(), state],
        )?;
        tx.commit()?;
        Ok(())
    }

    fn checkpoint(&self) -> Result<Option<(Vec<u8>, String)>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT state, created FROM checkpoints ORDER BY id DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
    }

    fn ping(&self) -> Result<(), StoreError> {
        self.conn().query_row("SELECT 1", [], |_| Ok(()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        drop(Sqlite::open(dir.path()).unwrap());
        let conn = Connection::open(dir.path().join("adr.sqlite")).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        drop(conn);
        let err = Sqlite::open(dir.path()).unwrap_err();
        assert!(err.to_string().contains("schema version 99"), "{err}");
    }
}

//! PostgreSQL, when `database` is configured: the same schema as the embedded store,
//! migrated at start under an advisory lock (two services starting together migrate
//! once), versioned in `adr_schema`.
//!
//! One connection, used by one caller at a time, as the SQLite store does: the engine
//! thread writes each batch's alerts in one statement (arrays unnested server-side, one
//! round trip however many alerts), readers wait for it. A connection the server or the
//! network dropped is made again on the next call, once; if that fails the call fails
//! (`503 store_unavailable` to the client, `/health` degraded) and the one after tries
//! again, so the service comes back with the database without a restart.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use postgres::{Client, NoTls};

use super::{
    model_id, model_number, now, AlertQuery, Backend, NewAlert, NewModel, RuleVersion, StoreError,
    StoredAlert, StoredModel,
};
use crate::config::Database;

/// The schema's migrations, oldest first: the version is how many have run. The same
/// tables as SQLite's, in PostgreSQL's types (`jsonb` documents, `bytea` states).
const MIGRATIONS: [&str; 5] = [
    "CREATE TABLE alerts (
         id BIGSERIAL PRIMARY KEY,
         time_ns BIGINT NOT NULL,
         alert TEXT NOT NULL,
         key TEXT NOT NULL,
         severity TEXT NOT NULL,
         rank SMALLINT NOT NULL,
         doc JSONB NOT NULL
     );
     CREATE INDEX alerts_by_time ON alerts (time_ns);
     CREATE INDEX alerts_by_key ON alerts (key, time_ns);",
    "CREATE TABLE models (
         id BIGSERIAL PRIMARY KEY,
         detector TEXT NOT NULL,
         params JSONB NOT NULL,
         columns JSONB NOT NULL,
         rows_trained BIGINT NOT NULL,
         created TEXT NOT NULL,
         state BYTEA NOT NULL
     );",
    "CREATE TABLE tokens (
         id BIGSERIAL PRIMARY KEY,
         name TEXT NOT NULL,
         hash BYTEA NOT NULL UNIQUE,
         created TEXT NOT NULL
     );",
    "CREATE TABLE rule_versions (
         id BIGSERIAL PRIMARY KEY,
         name TEXT NOT NULL,
         version BIGINT NOT NULL,
         text TEXT,
         created TEXT NOT NULL,
         UNIQUE (name, version)
     );",
    "CREATE TABLE checkpoints (
         id BIGSERIAL PRIMARY KEY,
         created TEXT NOT NULL,
         state BYTEA NOT NULL
     );",
];

/// The schema version this build writes.
const SCHEMA: i64 = MIGRATIONS.len() as i64;

/// The advisory lock migrations hold ("adr" in ASCII).
const MIGRATION_LOCK: i64 = 0x0061_6472;

/// How long a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The PostgreSQL store.
pub struct Postgres {
    config: postgres::Config,
    location: String,
    client: Mutex<Option<Client>>,
}

impl std::fmt::Debug for Postgres {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Postgres")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

impl Postgres {
    /// Connects as `database` says and migrates the schema.
    ///
    /// # Errors
    ///
    /// It cannot be reached, refused the login, or has a schema newer than this build.
    pub fn connect(database: &Database) -> Result<Postgres, StoreError> {
        let mut config = postgres::Config::new();
        config
            .host(&database.host)
            .port(database.port)
            .dbname(&database.name)
            .user(&database.user)
            .application_name("adr serve")
            .connect_timeout(CONNECT_TIMEOUT);
        if !database.password.is_empty() {
            config.password(&database.password);
        }
        let location = format!("{}:{}/{}", database.host, database.port, database.name);
        let mut client = config.connect(NoTls)?;
        migrate(&mut client, &location)?;
        Ok(Postgres {
            config,
            location,
            client: Mutex::new(Some(client)),
        })
    }

    /// Runs `work` on the connection, making it again first if it was dropped.
    fn with<T>(
        &self,
        work: impl FnMut(&mut Client) -> Result<T, postgres::Error>,
    ) -> Result<T, StoreError> {
        self.run(1, work)
    }

    /// As [`with`](Self::with), and once more on a new connection if this one turns out
    /// dropped during `work` (a server restart between two calls): only for work that
    /// may run twice (reads, deletes, updates to a value), never for an insert, which
    /// the server may have committed before the connection dropped.
    fn with_retry<T>(
        &self,
        work: impl FnMut(&mut Client) -> Result<T, postgres::Error>,
    ) -> Result<T, StoreError> {
        self.run(2, work)
    }

    fn run<T>(
        &self,
        attempts: u32,
        mut work: impl FnMut(&mut Client) -> Result<T, postgres::Error>,
    ) -> Result<T, StoreError> {
        let mut slot = self.client.lock().unwrap_or_else(PoisonError::into_inner);
        for attempt in 1..=attempts {
            if slot.as_ref().is_none_or(Client::is_closed) {
                *slot = None;
                *slot = Some(self.config.connect(NoTls)?);
            }
            let client = slot.as_mut().expect("connected above");
            match work(client) {
                Ok(t) => return Ok(t),
                Err(e) => {
                    let dropped = client.is_closed() || e.is_closed();
                    if dropped {
                        *slot = None;
                    }
                    if !dropped || attempt == attempts {
                        return Err(e.into());
                    }
                }
            }
        }
        unreachable!("the last attempt returns")
    }
}

impl Drop for Postgres {
    /// The client closes its connection by blocking on a runtime of its own, which an
    /// async worker may not do: there, it is closed on a thread of its own.
    fn drop(&mut self) {
        let client = self
            .client
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(client) = client {
            if tokio::runtime::Handle::try_current().is_ok() {
                let _ = std::thread::Builder::new()
                    .name("adr-pg-close".into())
                    .spawn(move || drop(client));
            }
        }
    }
}

/// Applies the migrations this database lacks, under an advisory lock.
fn migrate(client: &mut Client, location: &str) -> Result<(), StoreError> {
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS adr_schema (version BIGINT NOT NULL)")?;
    let version: Option<i64> = tx
        .query_opt("SELECT version FROM adr_schema", &[])?
        .map(|row| row.get(0));
    let version = match version {
        Some(v) => v,
        None => {
            tx.execute("INSERT INTO adr_schema (version) VALUES (0)", &[])?;
            0
        }
    };
    if version > SCHEMA {
        return Err(StoreError::Newer {
            place: location.to_owned(),
            found: version,
            known: SCHEMA,
        });
    }
    for (from, step) in MIGRATIONS
        .iter()
        .enumerate()
        .skip(usize::try_from(version).unwrap_or(0))
    {
        tx.batch_execute(step)?;
        tx.execute("UPDATE adr_schema SET version = $1", &[&(from as i64 + 1)])?;
    }
    tx.commit()?;
    Ok(())
}

fn model_row(row: &postgres::Row) -> StoredModel {
    let params: serde_json::Value = row.get(2);
    let columns: serde_json::Value = row.get(3);
    let rows: i64 = row.get(4);
    StoredModel {
        id: model_id(row.get(0)),
        detector: row.get(1),
        params: serde_json::from_value(params).unwrap_or_default(),
        columns: serde_json::from_value(columns).unwrap_or_default(),
        rows_trained: usize::try_from(rows).unwrap_or(0),
        created: row.get(5),
        state: row.get(6),
    }
}

impl Backend for Postgres {
    fn kind(&self) -> &'static str {
        "postgresql"
    }

    fn location(&self) -> String {
        self.location.clone()
    }

    fn insert(&self, alerts: &[NewAlert]) -> Result<(), StoreError> {
        if alerts.is_empty() {
            return Ok(());
        }
        let times: Vec<i64> = alerts.iter().map(|a| a.time_ns).collect();
        let names: Vec<&str> = alerts.iter().map(|a| a.alert.as_str()).collect();
        let keys: Vec<&str> = alerts.iter().map(|a| a.key.as_str()).collect();
        let severities: Vec<&str> = alerts.iter().map(|a| a.severity.as_str()).collect();
        let ranks: Vec<i16> = alerts.iter().map(|a| i16::from(a.rank)).collect();
        let docs: Vec<&serde_json::Value> = alerts.iter().map(|a| &a.doc).collect();
        self.with(|c| {
            c.execute(
                "INSERT INTO alerts (time_ns, alert, key, severity, rank, doc)
                 SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::smallint[], $6::jsonb[])",
                &[&times, &names, &keys, &severities, &ranks, &docs],
            )
        })?;
        Ok(())
    }

    fn alerts(&self, query: &AlertQuery) -> Result<Vec<StoredAlert>, StoreError> {
        let limit = i64::try_from(query.limit).unwrap_or(i64::MAX);
        let rank = query.min_rank.map(i16::from);
        let rows = self.with_retry(|c| {
            c.query(
                "SELECT id, time_ns, alert, key, severity, doc FROM alerts
                 WHERE ($1::text IS NULL OR key = $1)
                   AND ($2::text IS NULL OR alert = $2)
                   AND ($3::bigint IS NULL OR time_ns >= $3)
                   AND ($4::bigint IS NULL OR time_ns < $4)
                   AND ($5::smallint IS NULL OR rank >= $5)
                   AND ($6::bigint IS NULL OR id > $6)
                 ORDER BY id LIMIT $7",
                &[
                    &query.key,
                    &query.alert,
                    &query.from_ns,
                    &query.to_ns,
                    &rank,
                    &query.after_id,
                    &limit,
                ],
            )
        })?;
        Ok(rows
            .iter()
            .map(|r| StoredAlert {
                id: r.get(0),
                time_ns: r.get(1),
                alert: r.get(2),
                key: r.get(3),
                severity: r.get(4),
                doc: r.get(5),
            })
            .collect())
    }

    fn count(&self) -> Result<u64, StoreError> {
        let n: i64 = self
            .with_retry(|c| c.query_one("SELECT count(*) FROM alerts", &[]))?
            .get(0);
        Ok(u64::try_from(n).unwrap_or(0))
    }

    fn purge_before(&self, time_ns: i64) -> Result<u64, StoreError> {
        self.with_retry(|c| c.execute("DELETE FROM alerts WHERE time_ns < $1", &[&time_ns]))
    }

    fn newest_time(&self) -> Result<Option<i64>, StoreError> {
        Ok(self
            .with_retry(|c| c.query_one("SELECT max(time_ns) FROM alerts", &[]))?
            .get(0))
    }

    fn insert_model(&self, model: &NewModel) -> Result<String, StoreError> {
        let params = serde_json::to_value(&model.params).unwrap_or_default();
        let columns = serde_json::to_value(&model.columns).unwrap_or_default();
        let rows = i64::try_from(model.rows_trained).unwrap_or(i64::MAX);
        let created = now();
        let row = self.with(|c| {
            c.query_one(
                "INSERT INTO models (detector, params, columns, rows_trained, created, state)
                 VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                &[
                    &model.detector,
                    &params,
                    &columns,
                    &rows,
                    &created,
                    &model.state,
                ],
            )
        })?;
        Ok(model_id(row.get(0)))
    }

    fn model(&self, id: &str) -> Result<Option<StoredModel>, StoreError> {
        let Some(number) = model_number(id) else {
            return Ok(None);
        };
        let row = self.with_retry(|c| {
            c.query_opt(
                "SELECT id, detector, params, columns, rows_trained, created, state FROM models WHERE id = $1",
                &[&number],
            )
        })?;
        Ok(row.as_ref().map(model_row))
    }

    fn models(&self) -> Result<Vec<StoredModel>, StoreError> {
        let rows = self.with_retry(|c| {
            c.query(
                "SELECT id, detector, params, columns, rows_trained, created, state FROM models ORDER BY id",
                &[],
            )
        })?;
        Ok(rows.iter().map(model_row).collect())
    }

    fn update_model_states(&self, states: &[(&str, &[u8])]) -> Result<Vec<bool>, StoreError> {
        // Replacing a state with itself changes nothing: a retry after a dropped
        // connection is safe.
        self.with_retry(|c| {
            let mut tx = c.transaction()?;
            let mut there = Vec::with_capacity(states.len());
            for (id, state) in states {
                there.push(match model_number(id) {
                    Some(number) => {
                        tx.execute(
                            "UPDATE models SET state = $1 WHERE id = $2",
                            &[state, &number],
                        )? > 0
                    }
                    None => false,
                });
            }
            tx.commit()?;
            Ok(there)
        })
    }

    fn delete_model(&self, id: &str) -> Result<bool, StoreError> {
        let Some(number) = model_number(id) else {
            return Ok(false);
        };
        Ok(self.with_retry(|c| c.execute("DELETE FROM models WHERE id = $1", &[&number]))? > 0)
    }

    fn insert_token(&self, name: &str, hash: &[u8]) -> Result<(), StoreError> {
        let created = now();
        self.with(|c| {
            c.execute(
                "INSERT INTO tokens (name, hash, created) VALUES ($1, $2, $3)",
                &[&name, &hash, &created],
            )
        })?;
        Ok(())
    }

    fn token_named(&self, hash: &[u8]) -> Result<Option<String>, StoreError> {
        Ok(self
            .with_retry(|c| c.query_opt("SELECT name FROM tokens WHERE hash = $1", &[&hash]))?
            .map(|r| r.get(0)))
    }

    fn token_count(&self) -> Result<u64, StoreError> {
        let n: i64 = self
            .with_retry(|c| c.query_one("SELECT count(*) FROM tokens", &[]))?
            .get(0);
        Ok(u64::try_from(n).unwrap_or(0))
    }

    fn insert_rule_version(&self, name: &str, text: Option<&str>) -> Result<u64, StoreError> {
        let created = now();
        // One statement: the next number and the row together, so two writers cannot take
        // the same number (the unique constraint refuses the second).
        let row = self.with(|c| {
            c.query_one(
                "INSERT INTO rule_versions (name, version, text, created)
                 SELECT $1, coalesce(max(version), 0) + 1, $2, $3 FROM rule_versions WHERE name = $1
                 RETURNING version",
                &[&name, &text, &created],
            )
        })?;
        let version: i64 = row.get(0);
        Ok(u64::try_from(version).unwrap_or(0))
    }

    fn rule_version(
        &self,
        name: &str,
        version: Option<u64>,
    ) -> Result<Option<RuleVersion>, StoreError> {
        let version = version.map(|v| i64::try_from(v).unwrap_or(i64::MAX));
        let row = self.with_retry(|c| {
            c.query_opt(
                "SELECT version, text, created FROM rule_versions
                 WHERE name = $1 AND ($2::bigint IS NULL OR version = $2)
                 ORDER BY version DESC LIMIT 1",
                &[&name, &version],
            )
        })?;
        Ok(row.map(|r| {
            let version: i64 = r.get(0);
            RuleVersion {
                version: u64::try_from(version).unwrap_or(0),
                text: r.get(1),
                created: r.get(2),
            }
        }))
    }

    fn save_checkpoint(&self, state: &[u8]) -> Result<(), StoreError> {
        let created = now();
        // Replacing is idempotent: it may run again on a new connection.
        self.with_retry(|c| {
            let mut tx = c.transaction()?;
            tx.execute("DELETE FROM checkpoints", &[])?;
            tx.execute(
                "INSERT INTO checkpoints (created, state) VALUES ($1, $2)",
                &[&created, &state],
            )?;
            tx.commit()
        })
    }

    fn checkpoint(&self) -> Result<Option<(Vec<u8>, String)>, StoreError> {
        Ok(self
            .with_retry(|c| {
                c.query_opt(
                    "SELECT state, created FROM checkpoints ORDER BY id DESC LIMIT 1",
                    &[],
                )
            })?
            .map(|r| (r.get(0), r.get(1))))
    }

    fn ping(&self) -> Result<(), StoreError> {
        self.with_retry(|c| c.simple_query("SELECT 1"))?;
        Ok(())
    }
}

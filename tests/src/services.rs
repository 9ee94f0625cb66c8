//! The servers some tests need (PostgreSQL, Redis), found on this machine. Without one a
//! test skips and says so on its output; with `ADR_REQUIRE_SERVICES=1` (CI sets it) a
//! missing server fails the test instead, so a green CI has really run them.
//!
//! Where: `ADR_TEST_PG` (a libpq connection string for a user that may create databases;
//! default `host=127.0.0.1 port=5432 user=postgres dbname=test`) and `ADR_TEST_REDIS`
//! (`host:port`; default `127.0.0.1:6379`).

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// Whether a missing server fails the test rather than skipping it.
pub fn required() -> bool {
    std::env::var("ADR_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}

fn unavailable<T>(what: &str, why: &str) -> Option<T> {
    assert!(
        !required(),
        "{what} is needed (ADR_REQUIRE_SERVICES=1) but not reachable: {why}"
    );
    eprintln!(
        "SKIPPED: {what} is not reachable ({why}); start it, or set ADR_REQUIRE_SERVICES=1 to make this a failure"
    );
    None
}

fn admin_config() -> postgres::Config {
    let conninfo = std::env::var("ADR_TEST_PG")
        .unwrap_or_else(|_| "host=127.0.0.1 port=5432 user=postgres dbname=test".into());
    let mut config: postgres::Config = conninfo.parse().expect("ADR_TEST_PG parses");
    config.connect_timeout(Duration::from_secs(3));
    config
}

/// A database of its own for one test, dropped with it.
#[derive(Debug)]
pub struct PgDatabase {
    /// Host.
    pub host: String,
    /// Port.
    pub port: u16,
    /// User.
    pub user: String,
    /// Password (empty for trust).
    pub password: String,
    /// The database's name.
    pub name: String,
}

impl PgDatabase {
    /// The seed's variables that point `adr serve` at it.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("DB_HOST", self.host.clone()),
            ("DB_PORT", self.port.to_string()),
            ("DB_NAME", self.name.clone()),
            ("DB_USER", self.user.clone()),
            ("DB_PASSWORD", self.password.clone()),
        ]
    }

    /// A client on it.
    pub fn client(&self) -> postgres::Client {
        let mut config = admin_config();
        config.dbname(&self.name);
        config
            .connect(postgres::NoTls)
            .expect("the test database answers")
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        if let Ok(mut admin) = admin_config().connect(postgres::NoTls) {
            let _ = admin.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

/// A fresh database on the test PostgreSQL, or `None` (skipped) when there is none.
pub fn postgres() -> Option<PgDatabase> {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let config = admin_config();
    let mut admin = match config.connect(postgres::NoTls) {
        Ok(c) => c,
        Err(e) => return unavailable("PostgreSQL", &e.to_string()),
    };
    let name = format!(
        "adr_test_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    // Each its own statement: neither may run in a transaction block.
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .and_then(|()| admin.batch_execute(&format!("CREATE DATABASE {name}")))
        .expect("the test user may create databases");
    let host = match config.get_hosts().first() {
        Some(postgres::config::Host::Tcp(h)) => h.clone(),
        _ => "127.0.0.1".into(),
    };
    Some(PgDatabase {
        host,
        port: config.get_ports().first().copied().unwrap_or(5432),
        user: config.get_user().unwrap_or("postgres").to_owned(),
        password: config
            .get_password()
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .unwrap_or_default(),
        name,
    })
}

/// The test Redis: `host:port`, or `None` (skipped) when there is none.
pub fn redis() -> Option<(String, u16)> {
    let at = std::env::var("ADR_TEST_REDIS").unwrap_or_else(|_| "127.0.0.1:6379".into());
    let (host, port) = at.rsplit_once(':').expect("ADR_TEST_REDIS is host:port");
    let port: u16 = port.parse().expect("ADR_TEST_REDIS has a port");
    let url = format!("redis://{host}:{port}/");
    let answered = redis::Client::open(url.as_str())
        .and_then(|c| c.get_connection_with_timeout(Duration::from_secs(3)))
        .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c));
    match answered {
        Ok(_) => Some((host.to_owned(), port)),
        Err(e) => unavailable("Redis", &e.to_string()),
    }
}

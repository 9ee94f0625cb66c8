//! Sustained alert writes to the service's stores, batched as the engine writes them (one
//! transaction or statement a batch): what a market-wide incident asks of them.
//!
//!     store_writes [--seconds S] [--batch N] [--postgres "host=127.0.0.1 user=postgres dbname=test"]
//!
//! Prints one JSON object per store: alerts written per second and the p99 time of one
//! batch's write. PostgreSQL is measured in a database of its own, dropped afterwards.

use std::time::{Duration, Instant};

use adr_server::store::{NewAlert, Store};
use serde_json::json;

fn alerts(batch: usize, round: u64) -> Vec<NewAlert> {
    (0..batch)
        .map(|i| {
            let key = format!("SYM{}", i % 500);
            NewAlert {
                time_ns: 1_736_900_000_000_000_000 + (round * batch as u64 + i as u64) as i64,
                alert: "market_stress".into(),
                key: key.clone(),
                severity: "high".into(),
                rank: 3,
                doc: json!({
                    "alert": "market_stress", "key": key, "keys": {"symbol": key},
                    "time": "2025-01-15T10:31:00Z", "severity": "high", "score": 0.93,
                    "ensemble": "market_stress", "events": 2,
                }),
            }
        })
        .collect()
}

fn measure(name: &str, store: &Store, seconds: f64, batch: usize) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let mut times = Vec::new();
    let mut round = 0;
    while Instant::now() < deadline {
        let batch = alerts(batch, round);
        let t = Instant::now();
        store.insert(&batch).expect("the store takes the batch");
        times.push(t.elapsed().as_secs_f64());
        round += 1;
    }
    let elapsed = started.elapsed().as_secs_f64();
    times.sort_by(f64::total_cmp);
    let p99 = times[((times.len() as f64 * 0.99).ceil() as usize).clamp(1, times.len()) - 1];
    let written = round as usize * batch;
    json!({
        "store": name,
        "batch": batch,
        "alerts": written,
        "alerts_per_s": written as f64 / elapsed,
        "batch_write_p99_ms": p99 * 1e3,
    })
}

fn main() {
    let mut seconds = 5.0;
    let mut batch = 1000;
    let mut postgres = None;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().unwrap_or_default();
        match flag.as_str() {
            "--seconds" => seconds = value.parse::<f64>().unwrap_or(5.0).clamp(0.5, 120.0),
            "--batch" => batch = value.parse().unwrap_or(1000),
            "--postgres" => postgres = Some(value),
            _ => {
                eprintln!("usage: store_writes [--seconds S] [--batch N] [--postgres CONNINFO]");
                std::process::exit(2);
            }
        }
    }
    let dir = tempfile::tempdir().expect("a temp folder");
    let sqlite = Store::open(dir.path()).expect("SQLite opens");
    println!("{}", measure("sqlite", &sqlite, seconds, batch));
    if let Some(conninfo) = postgres {
        let admin: postgres::Config = conninfo.parse().expect("a libpq connection string");
        let mut client = admin.connect(postgres::NoTls).expect("PostgreSQL answers");
        let name = format!("adr_store_writes_{}", std::process::id());
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("may create a database");
        let host = match admin.get_hosts().first() {
            Some(postgres::config::Host::Tcp(h)) => h.clone(),
            _ => "127.0.0.1".into(),
        };
        let database = adr_server::config::Database {
            host,
            port: admin.get_ports().first().copied().unwrap_or(5432),
            name: name.clone(),
            user: admin.get_user().unwrap_or("postgres").to_owned(),
            password: admin
                .get_password()
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .unwrap_or_default(),
        };
        {
            let store = Store::connect(&database).expect("PostgreSQL store");
            println!("{}", measure("postgresql", &store, seconds, batch));
        }
        let _ = client.batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)"));
    }
}

//! `adr serve` on real PostgreSQL and Redis servers (issue 22): alerts stored in
//! PostgreSQL before the answer and kept across a restart; a database whose sessions are
//! cut mid-run comes back without losing an acknowledged alert; every alert reaches a
//! Redis subscriber and the stream; Redis down at start is a stated degraded mode. Each
//! test skips visibly without its server unless `ADR_REQUIRE_SERVICES=1`.

use std::time::Duration;

use adr_tests::serve::{config_file, Server};
use adr_tests::{built, plugin_dir, services, workspace};

fn market_csv() -> Vec<u8> {
    std::fs::read(workspace().join("examples/market.csv")).unwrap()
}

/// The example market again, `shift` days later and under another symbol, so that each
/// post is new events for a key of its own.
fn market_csv_for(symbol: &str) -> Vec<u8> {
    String::from_utf8(market_csv())
        .unwrap()
        .replace("BTC-USD", symbol)
        .into_bytes()
}

fn alerts_in(db: &services::PgDatabase) -> i64 {
    db.client()
        .query_one("SELECT count(*) FROM alerts", &[])
        .unwrap()
        .get(0)
}

#[test]
fn alerts_are_in_postgresql_before_the_answer_and_after_a_restart() {
    let Some(db) = services::postgres() else {
        return;
    };
    let plugins = plugin_dir(&[&built().statistical]);
    let data = tempfile::tempdir().unwrap();
    let env = db.env();
    let server = Server::start_with(plugins.path(), data.path(), &[], &env);
    let (status, health) = server.get("/api/v1/health");
    assert_eq!(status, 200, "{health}");
    assert_eq!(
        health["backends"]["store"]["kind"], "postgresql",
        "{health}"
    );
    assert!(
        !data.path().join("adr.sqlite").exists(),
        "no embedded store beside PostgreSQL"
    );

    let (status, done) = server.post("/api/v1/events", Some("text/csv"), &market_csv());
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["alerts"], 1, "{done}");
    // Acknowledged means stored: a client of the database sees it now.
    assert_eq!(alerts_in(&db), 1);
    let doc: serde_json::Value = db
        .client()
        .query_one("SELECT doc FROM alerts", &[])
        .unwrap()
        .get(0);
    assert_eq!(doc["alert"], "market_stress", "{doc}");
    assert!(server.stop().success());

    let again = Server::start_with(plugins.path(), data.path(), &[], &env);
    let (_, page) = again.get("/api/v1/alerts");
    assert_eq!(page["alerts"].as_array().unwrap().len(), 1, "{page}");
    // Tokens live in PostgreSQL too: each start made one.
    let tokens: i64 = db
        .client()
        .query_one("SELECT count(*) FROM tokens", &[])
        .unwrap()
        .get(0);
    assert_eq!(tokens, 2);
}

#[test]
fn a_database_that_drops_every_session_mid_run_loses_no_acknowledged_alert() {
    let Some(db) = services::postgres() else {
        return;
    };
    let plugins = plugin_dir(&[&built().statistical]);
    let data = tempfile::tempdir().unwrap();
    let server = Server::start_with(plugins.path(), data.path(), &[], &db.env());
    let mut acknowledged = 0;
    let mut refused = 0;
    for round in 0..6 {
        if round % 2 == 1 {
            // A failover: the server ends every session of the service.
            db.client()
                .execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
                    &[&db.name],
                )
                .unwrap();
        }
        let symbol = format!("SYM{round}");
        let (status, done) =
            server.post("/api/v1/events", Some("text/csv"), &market_csv_for(&symbol));
        match status {
            200 => acknowledged += done["alerts"].as_i64().unwrap(),
            503 => {
                assert_eq!(done["error"]["code"], "store_unavailable", "{done}");
                refused += 1;
            }
            other => panic!("{other}: {done}"),
        }
    }
    assert!(
        acknowledged >= 4,
        "most rounds went through: {acknowledged}"
    );
    assert!(refused <= 3, "{refused}");
    // Every acknowledged alert is stored; a refused batch may have stored its alerts or
    // not, never half of them.
    let stored = alerts_in(&db);
    assert!(
        stored >= acknowledged && stored <= acknowledged + refused,
        "stored {stored}, acknowledged {acknowledged}, refused {refused}"
    );
    let (status, health) = server.get("/api/v1/health");
    assert_eq!(
        (status, health["status"].as_str()),
        (200, Some("ok")),
        "{health}"
    );
}

/// A configuration file for Redis at `host:port` on `channel` and `stream`.
fn redis_config(dir: &std::path::Path, host: &str, port: u16, channel: &str) -> String {
    config_file(
        dir,
        &format!(
            "redis:\n  host: \"{host}\"\n  port: {port}\n  channel: \"{channel}\"\n  stream: \"{channel}:stream\"\n"
        ),
    )
}

#[test]
fn every_alert_reaches_a_redis_subscriber_and_the_stream() {
    let Some((host, port)) = services::redis() else {
        return;
    };
    let channel = format!("adr:test:{}:alerts", std::process::id());
    let client = redis::Client::open(format!("redis://{host}:{port}/")).unwrap();
    let mut admin = client.get_connection().unwrap();
    let _: () = redis::cmd("DEL")
        .arg(format!("{channel}:stream"))
        .query(&mut admin)
        .unwrap();
    let mut listener = client.get_connection().unwrap();
    let mut pubsub = listener.as_pubsub();
    pubsub.subscribe(&channel).unwrap();
    pubsub
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();

    let plugins = plugin_dir(&[&built().statistical]);
    let data = tempfile::tempdir().unwrap();
    let config = redis_config(data.path(), &host, port, &channel);
    let server = Server::start(plugins.path(), data.path(), &["--config", &config]);
    let mut fired = 0;
    for symbol in ["AAA", "BBB", "CCC"] {
        let (status, done) =
            server.post("/api/v1/events", Some("text/csv"), &market_csv_for(symbol));
        assert_eq!(status, 200, "{done}");
        fired += done["alerts"].as_u64().unwrap();
    }
    assert_eq!(fired, 3);
    let mut heard = Vec::new();
    for _ in 0..fired {
        let message = pubsub.get_message().expect("an alert within 10 s");
        let text: String = message.get_payload().unwrap();
        let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
        heard.push(
            doc["keys"]["symbol"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        );
        assert_eq!(doc["alert"], "market_stress", "{doc}");
    }
    heard.sort();
    assert_eq!(heard, ["AAA", "BBB", "CCC"]);
    let length: u64 = redis::cmd("XLEN")
        .arg(format!("{channel}:stream"))
        .query(&mut admin)
        .unwrap();
    assert_eq!(length, fired);
    let metrics = server.text("/metrics");
    assert!(metrics.contains("redis_published_total 3"), "{metrics}");
    let (_, health) = server.get("/api/v1/health");
    assert_eq!(health["backends"]["redis"]["state"], "up", "{health}");
    let _: () = redis::cmd("DEL")
        .arg(format!("{channel}:stream"))
        .query(&mut admin)
        .unwrap();
}

#[test]
fn redis_down_at_start_is_a_degraded_mode_that_still_takes_events_and_stores_alerts() {
    let plugins = plugin_dir(&[&built().statistical]);
    let data = tempfile::tempdir().unwrap();
    // Nothing listens on port 1.
    let config = redis_config(data.path(), "127.0.0.1", 1, "adr:nowhere");
    let server = Server::start(plugins.path(), data.path(), &["--config", &config]);
    let (status, health) = server.get("/api/v1/health");
    assert_eq!(status, 200, "ready without Redis: {health}");
    assert_eq!(health["status"], "degraded", "{health}");
    assert_eq!(health["backends"]["redis"]["state"], "down", "{health}");
    assert!(health["backends"]["redis"]["error"].is_string(), "{health}");
    let (status, done) = server.post("/api/v1/events", Some("text/csv"), &market_csv());
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["alerts"], 1);
    let (_, page) = server.get("/api/v1/alerts");
    assert_eq!(
        page["alerts"].as_array().unwrap().len(),
        1,
        "stored: {page}"
    );
    let dropped = (0..50)
        .find_map(|_| {
            let metrics = server.text("/metrics");
            if metrics.contains("redis_dropped_total 1") {
                Some(metrics)
            } else {
                std::thread::sleep(Duration::from_millis(100));
                None
            }
        })
        .is_some();
    assert!(dropped, "the alert not published is counted");
}

#[test]
fn each_models_current_state_is_cached_in_redis_and_removed_with_the_model() {
    let Some((host, port)) = services::redis() else {
        return;
    };
    let hash = format!("adr:test:{}:models", std::process::id());
    let client = redis::Client::open(format!("redis://{host}:{port}/")).unwrap();
    let mut admin = client.get_connection().unwrap();
    let _: () = redis::cmd("DEL").arg(&hash).query(&mut admin).unwrap();
    let cached = |admin: &mut redis::Connection, id: &str| -> Option<Vec<u8>> {
        // Written after the store, from a thread of its own: wait for it a little.
        let mut last = None;
        for _ in 0..50 {
            last = redis::cmd("HGET").arg(&hash).arg(id).query(admin).unwrap();
            if last.is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        last
    };

    let plugins = plugin_dir(&[&built().statistical]);
    let data = tempfile::tempdir().unwrap();
    let config = config_file(
        data.path(),
        &format!("redis:\n  host: \"{host}\"\n  port: {port}\n  models: \"{hash}\"\n"),
    );
    let server = Server::start(plugins.path(), data.path(), &["--config", &config]);
    let (status, model) = server.post_json(
        "/api/v1/detectors/train",
        &serde_json::json!({
            "detector": "statistical.zscore",
            "params": {"window": 30},
            "columns": ["price"],
            "rows": (0..50).map(|i| [100.0 + f64::from(i % 3)]).collect::<Vec<_>>(),
        }),
    );
    assert_eq!(status, 201, "{model}");
    let id = model["model_id"].as_str().unwrap().to_owned();
    let trained = cached(&mut admin, &id).expect("the trained state is cached");
    assert!(!trained.is_empty());

    // After a predict the cache holds the state the answer left.
    let predict = |value: f64| {
        server.post_json(
            "/api/v1/detectors/predict",
            &serde_json::json!({"model_id": id, "values": [value]}),
        )
    };
    assert_eq!(predict(101.0).0, 200);
    let mut after = trained.clone();
    for _ in 0..50 {
        after = cached(&mut admin, &id).unwrap();
        if after != trained {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_ne!(after, trained, "the cache follows predict");

    assert_eq!(server.delete(&format!("/api/v1/models/{id}")), 204);
    let mut gone = false;
    for _ in 0..50 {
        let exists: bool = redis::cmd("HEXISTS")
            .arg(&hash)
            .arg(&id)
            .query(&mut admin)
            .unwrap();
        if !exists {
            gone = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(gone, "a deleted model leaves the cache");
    assert!(server.stop().success());
    let _: () = redis::cmd("DEL").arg(&hash).query(&mut admin).unwrap();
}

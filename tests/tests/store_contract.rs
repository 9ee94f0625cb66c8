//! The service's two stores keep one contract: the same calls give the same answers on the
//! embedded SQLite store and on PostgreSQL (a database of its own on the test server;
//! skipped visibly without one unless `ADR_REQUIRE_SERVICES=1`). Alerts filter, page and
//! purge; models, tokens and rule versions round-trip; what was written survives a reopen;
//! a schema newer than the build is refused.

use adr_server::store::{AlertQuery, NewAlert, NewModel, Store};
use adr_tests::services;

fn alert(t: i64, key: &str, severity: &str, rank: u8) -> NewAlert {
    NewAlert {
        time_ns: t,
        alert: "stress".into(),
        key: key.into(),
        severity: severity.into(),
        rank,
        doc: serde_json::json!({"alert": "stress", "key": key, "score": 0.5}),
    }
}

/// Writes through `store`.
fn write(store: &Store) {
    store
        .insert(&[
            alert(10, "BTC", "high", 3),
            alert(20, "ETH", "low", 1),
            alert(30, "BTC", "critical", 4),
        ])
        .unwrap();
    store.insert(&[]).unwrap();
    // Keys are text of any kind: quotes, commas, SQL.
    store
        .insert(&[alert(40, "ETH'; DROP TABLE alerts; --", "medium", 2)])
        .unwrap();
}

/// Reads back through `store` (perhaps another connection) what [`write`] wrote, then
/// exercises the rest.
fn read_and_exercise(store: &Store) {
    assert_eq!(store.count().unwrap(), 4);
    let all = |q: AlertQuery| store.alerts(&AlertQuery { limit: 10, ..q }).unwrap();
    assert_eq!(all(AlertQuery::default()).len(), 4);
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
    assert_eq!(severe[0].doc["score"], 0.5);
    let odd = all(AlertQuery {
        key: Some("ETH'; DROP TABLE alerts; --".into()),
        to_ns: Some(41),
        ..AlertQuery::default()
    });
    assert_eq!(odd.len(), 1);
    let page = |after, limit| {
        store
            .alerts(&AlertQuery {
                limit,
                after_id: after,
                ..AlertQuery::default()
            })
            .unwrap()
    };
    let first = page(None, 3);
    let rest = page(Some(first[2].id), 3);
    assert_eq!((first.len(), rest.len(), rest[0].time_ns), (3, 1, 40));
    assert!(first.windows(2).all(|w| w[0].id < w[1].id));

    // Models: stored, listed, state replaced, deleted; ids that are not ids find nothing.
    let id = store
        .insert_model(&NewModel {
            detector: "statistical.zscore".into(),
            params: vec![("window".into(), "20".into())],
            columns: vec!["close".into()],
            rows_trained: 100,
            state: vec![0, 1, 2, 255],
        })
        .unwrap();
    let model = store.model(&id).unwrap().unwrap();
    assert_eq!(model.state, [0, 1, 2, 255]);
    assert_eq!(model.params, [("window".to_owned(), "20".to_owned())]);
    let state = [9u8; 1000];
    assert_eq!(
        store
            .update_model_states(&[
                (id.as_str(), &state[..]),
                ("m999999", &[1u8][..]),
                ("x", &[])
            ])
            .unwrap(),
        [true, false, false]
    );
    assert_eq!(store.model(&id).unwrap().unwrap().state.len(), 1000);
    assert_eq!(store.models().unwrap().len(), 1);
    for nothing in ["", "m", "mx", "m99999", "42", "m-1"] {
        assert!(store.model(nothing).unwrap().is_none(), "{nothing}");
        assert!(!store.delete_model(nothing).unwrap(), "{nothing}");
    }
    assert!(store.delete_model(&id).unwrap());
    assert!(store.model(&id).unwrap().is_none());

    // Tokens: found by hash only; a hash is stored once.
    store.insert_token("ops", &[7; 32]).unwrap();
    assert_eq!(store.token_named(&[7; 32]).unwrap().as_deref(), Some("ops"));
    assert_eq!(store.token_named(&[8; 32]).unwrap(), None);
    assert!(store.insert_token("again", &[7; 32]).is_err());
    assert_eq!(store.token_count().unwrap(), 1);

    // Rule versions count from 1 per name; a deletion is a version without text.
    assert_eq!(store.insert_rule_version("gap", Some("a")).unwrap(), 1);
    assert_eq!(store.insert_rule_version("gap", Some("b")).unwrap(), 2);
    assert_eq!(store.insert_rule_version("other", Some("x")).unwrap(), 1);
    assert_eq!(store.insert_rule_version("gap", None).unwrap(), 3);
    let newest = store.rule_version("gap", None).unwrap().unwrap();
    assert_eq!((newest.version, newest.text), (3, None));
    let second = store.rule_version("gap", Some(2)).unwrap().unwrap();
    assert_eq!(second.text.as_deref(), Some("b"));
    assert!(store.rule_version("gap", Some(u64::MAX)).unwrap().is_none());
    assert!(store.rule_version("nothing", None).unwrap().is_none());

    // One checkpoint kept: the newest.
    assert!(store.checkpoint().unwrap().is_none());
    store.save_checkpoint(&[1, 2, 3]).unwrap();
    store.save_checkpoint(&vec![0xab; 100_000]).unwrap();
    let (state, created) = store.checkpoint().unwrap().unwrap();
    assert_eq!(state, vec![0xab; 100_000]);
    assert!(created.ends_with('Z'), "{created}");

    // Retention.
    assert_eq!(store.newest_time().unwrap(), Some(40));
    assert_eq!(store.purge_before(25).unwrap(), 2);
    assert_eq!(store.count().unwrap(), 2);
    store.ping().unwrap();
}

#[test]
fn sqlite_keeps_the_contract_across_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.kind(), "sqlite");
    write(&store);
    drop(store);
    read_and_exercise(&Store::open(dir.path()).unwrap());
}

fn database_config(db: &services::PgDatabase) -> adr_server::config::Database {
    adr_server::config::Database {
        host: db.host.clone(),
        port: db.port,
        name: db.name.clone(),
        user: db.user.clone(),
        password: db.password.clone(),
    }
}

#[test]
fn postgresql_keeps_the_contract_across_a_reconnect() {
    let Some(db) = services::postgres() else {
        return;
    };
    let config = database_config(&db);
    let store = Store::connect(&config).unwrap();
    assert_eq!(store.kind(), "postgresql");
    assert!(!store.location().contains("password"));
    write(&store);
    drop(store);
    // A second start migrates nothing and reads what the first wrote.
    read_and_exercise(&Store::connect(&config).unwrap());
}

#[test]
fn postgresql_comes_back_after_its_connections_are_cut_and_refuses_a_newer_schema() {
    let Some(db) = services::postgres() else {
        return;
    };
    let config = database_config(&db);
    let store = Store::connect(&config).unwrap();
    store.insert(&[alert(1, "BTC", "high", 3)]).unwrap();
    // The server ends every session of this database (a restart, a failover).
    let mut admin = db.client();
    admin
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            &[&db.name],
        )
        .unwrap();
    // Reads retry on a new connection; the first write after the cut may fail (its
    // batch is then not acknowledged), and the next one goes through.
    assert_eq!(store.count().unwrap(), 1);
    admin
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            &[&db.name],
        )
        .unwrap();
    let mut written = false;
    for _ in 0..3 {
        if store.insert(&[alert(2, "BTC", "high", 3)]).is_ok() {
            written = true;
            break;
        }
    }
    assert!(written);
    assert_eq!(store.count().unwrap(), 2, "written once");

    admin
        .execute("UPDATE adr_schema SET version = 99", &[])
        .unwrap();
    let err = Store::connect(&config).unwrap_err();
    assert!(err.to_string().contains("schema version 99"), "{err}");
}

#[test]
fn postgresql_that_does_not_answer_is_a_clear_error() {
    // Nothing listens on port 1.
    let config = adr_server::config::Database {
        host: "127.0.0.1".into(),
        port: 1,
        ..adr_server::config::Database::default()
    };
    let err = Store::connect(&config).unwrap_err().to_string();
    assert!(err.contains("PostgreSQL"), "{err}");
}

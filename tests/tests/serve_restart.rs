//! `adr serve` across restarts (issue 22): SIGTERM drains, checkpoints and exits; the next
//! start restores every key's detector state and alert cooldowns, so the service goes on
//! as one never stopped (the same alerts, once; the same judgements); a kill -9 loses at
//! most what came after the last periodic checkpoint; rules changed while it was down
//! start cold, and `/health` says so.

use std::time::Duration;

use adr_tests::serve::{config_file, Server};
use adr_tests::{built, plugin_dir, workspace};

/// The example market cut at `at` (an RFC 3339 time): the rows before, the rows from.
fn halves(at: &str) -> (Vec<u8>, Vec<u8>) {
    let text = std::fs::read_to_string(workspace().join("examples/market.csv")).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let (mut before, mut after) = (format!("{header}\n"), format!("{header}\n"));
    for line in lines {
        let target = if &line[..20] < at {
            &mut before
        } else {
            &mut after
        };
        target.push_str(line);
        target.push('\n');
    }
    (before.into_bytes(), after.into_bytes())
}

fn post(server: &Server, csv: &[u8]) -> u64 {
    let (status, done) = server.post("/api/v1/events", Some("text/csv"), csv);
    assert_eq!(status, 200, "{done}");
    done["alerts"].as_u64().unwrap()
}

/// Every stored alert as (time, severity, score).
fn alerts(server: &Server) -> Vec<String> {
    let (_, page) = server.get("/api/v1/alerts?limit=1000");
    page["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let a = &a["alert"];
            format!("{} {} {}", a["time"], a["severity"], a["score"])
        })
        .collect()
}

/// Anomalies per ensemble and severity so far.
fn anomalies(server: &Server) -> serde_json::Value {
    let (_, stats) = server.get("/api/v1/detectors/stats");
    let per_ensemble = stats["ensembles"]
        .as_object()
        .unwrap_or_else(|| panic!("{stats}"))
        .iter()
        .map(|(name, e)| (name.clone(), e["by_severity"].clone()))
        .collect::<serde_json::Map<_, _>>();
    per_ensemble.into()
}

fn minus(after: &serde_json::Value, before: &serde_json::Value) -> serde_json::Value {
    let mut out = serde_json::Map::new();
    for (ensemble, severities) in after.as_object().unwrap() {
        let mut row = serde_json::Map::new();
        for (severity, n) in severities.as_object().unwrap() {
            let was = before[ensemble][severity].as_u64().unwrap_or(0);
            let now = n.as_u64().unwrap();
            if now > was {
                row.insert(severity.clone(), (now - was).into());
            }
        }
        if !row.is_empty() {
            out.insert(ensemble.clone(), row.into());
        }
    }
    out.into()
}

#[test]
fn a_service_stopped_and_started_goes_on_as_one_never_stopped() {
    let plugins = plugin_dir(&[&built().statistical]);
    // Just after the crash's alert at 10:31: the rest is inside its cooldown.
    let (first, second) = halves("2025-01-15T10:33:00Z");

    let whole_data = tempfile::tempdir().unwrap();
    let whole = Server::start(plugins.path(), whole_data.path(), &[]);
    assert_eq!(post(&whole, &first), 1);
    let halfway = anomalies(&whole);
    post(&whole, &second);
    let want_alerts = alerts(&whole);
    let want_second = minus(&anomalies(&whole), &halfway);
    assert!(
        !want_second.as_object().unwrap().is_empty(),
        "the second half has anomalies: {want_second}"
    );

    let data = tempfile::tempdir().unwrap();
    let server = Server::start(plugins.path(), data.path(), &[]);
    assert_eq!(post(&server, &first), 1);
    assert!(server.stop().success(), "SIGTERM is a clean stop");
    let again = Server::start(plugins.path(), data.path(), &[]);
    let (_, health) = again.get("/api/v1/health");
    let checkpoints = &health["checkpoints"];
    assert_eq!(checkpoints["restored"]["keys"], 1, "{health}");
    assert_eq!(checkpoints["restored"]["cold_detectors"], 0, "{health}");
    assert!(checkpoints["restored_from"].is_string(), "{health}");
    post(&again, &second);
    assert_eq!(alerts(&again), want_alerts, "the same alerts, once");
    assert_eq!(anomalies(&again), want_second, "the same judgements");
}

#[test]
fn a_kill_loses_at_most_what_came_after_the_last_checkpoint_and_changed_rules_start_cold() {
    let plugins = plugin_dir(&[&built().statistical]);
    let data = tempfile::tempdir().unwrap();
    let config = config_file(data.path(), "storage:\n  checkpoint_seconds: 1\n");
    let args = ["--config", config.as_str()];
    let (first, second) = halves("2025-01-15T10:33:00Z");
    let mut server = Server::start(plugins.path(), data.path(), &args);
    post(&server, &first);
    // Wait for a periodic checkpoint after the events.
    let mut taken = false;
    for _ in 0..100 {
        let (_, health) = server.get("/api/v1/health");
        if health["checkpoints"]["taken"].as_u64().unwrap_or(0) >= 2 {
            taken = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(taken, "periodic checkpoints are taken");
    server.child.kill().unwrap();
    server.child.wait().unwrap();

    let again = Server::start(plugins.path(), data.path(), &args);
    let (_, health) = again.get("/api/v1/health");
    assert_eq!(health["checkpoints"]["restored"]["keys"], 1, "{health}");
    // The crash's alert was stored before it was acknowledged, and its cooldown was in
    // the checkpoint: the second half does not fire it again.
    assert_eq!(post(&again, &second), 0);
    assert_eq!(alerts(&again).len(), 1);
    drop(again);

    // Rules changed while the service was down: their state would mean nothing.
    let changed = data.path().join("changed.adr");
    let rules = std::fs::read_to_string(workspace().join("rules/market_stress.adr")).unwrap();
    let rules = rules[..rules.find("\ntest ").unwrap()].replace("threshold = 4", "threshold = 5");
    std::fs::write(&changed, rules).unwrap();
    let cold = Server::start(
        plugins.path(),
        data.path(),
        &["--config", &config, "--rules", changed.to_str().unwrap()],
    );
    let (status, health) = cold.get("/api/v1/health");
    assert_eq!(status, 200, "{health}");
    let why = health["checkpoints"]["restore_error"].as_str().unwrap();
    assert!(why.contains("rules changed"), "{health}");
    assert!(health["checkpoints"]["restored"].is_null(), "{health}");
    post(&cold, &second);
}

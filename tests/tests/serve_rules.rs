//! Rule files uploaded to `adr serve` (`PUT`/`GET`/`DELETE /api/v1/rules/{name}`): checked
//! with the running rules before anything changes, refused with `adr check`'s diagnostics,
//! kept inside the uploads folder, hot-swapped while events flow, versioned in the store,
//! and still there after a restart (issue 22).

use adr_tests::serve::{config_file, refused_start, Server};
use adr_tests::{built, plugin_dir, workspace};

/// A gap between a bar's open and close far outside the last hour's: fires on the
/// example's flash crash.
const GAP: &str = "feature gap = (close - open) / open
detector gap_z = statistical.zscore(window = 60, threshold = 5) on gap
ensemble gap_move {
    vote = any(gap_z)
    severity {
        high when gap_z
        low otherwise
    }
}
alert gap_move {
    when severity >= high
    cooldown 30m
    notify log
}
";

fn market_csv() -> Vec<u8> {
    std::fs::read(workspace().join("examples/market.csv")).unwrap()
}

fn put(server: &Server, name: &str, text: &str) -> (u16, serde_json::Value) {
    server.request(
        "PUT",
        &format!("/api/v1/rules/{name}"),
        Some(text.as_bytes()),
    )
}

fn gap_alerts(server: &Server) -> usize {
    let (status, page) = server.get("/api/v1/alerts?alert=gap_move");
    assert_eq!(status, 200, "{page}");
    page["alerts"].as_array().unwrap().len()
}

#[test]
fn an_upload_is_checked_swapped_in_versioned_removed_and_kept_across_a_restart() {
    let plugins = plugin_dir(&[&built().statistical]);
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(plugins.path(), data.path(), &[]);

    let (status, done) = put(&server, "gap", GAP);
    assert_eq!(status, 201, "{done}");
    assert_eq!(done["generation"], 1, "{done}");
    assert_eq!(done["version"], 1, "{done}");
    assert!(
        done["swap"]["fresh"].to_string().contains("gap_z"),
        "{done}"
    );
    assert!(
        done["swap"]["kept"].to_string().contains("burst"),
        "the configured rules keep their state: {done}"
    );
    let (status, listed) = server.get("/api/v1/rules");
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["uploaded"], serde_json::json!(["gap"]), "{listed}");
    assert_eq!(
        listed["configured"],
        serde_json::json!(["rules/market_stress.adr"])
    );
    let (status, got) = server.get("/api/v1/rules/gap");
    assert_eq!(status, 200, "{got}");
    assert_eq!(got["text"], GAP);
    assert_eq!(got["sha256"], done["sha256"]);

    // The upload runs beside the configured rules on the next events.
    let (status, ingested) = server.post("/api/v1/events", Some("text/csv"), &market_csv());
    assert_eq!(status, 200, "{ingested}");
    assert_eq!(
        ingested["alerts"], 2,
        "market_stress and gap_move: {ingested}"
    );
    assert_eq!(gap_alerts(&server), 1);

    // A replacement is a new version; the old one stays readable.
    let calmer = GAP.replace("threshold = 5", "threshold = 7");
    let (status, done) = put(&server, "gap", &calmer);
    assert_eq!(status, 200, "{done}");
    assert_eq!(
        (done["replaced"].clone(), done["version"].clone()),
        (true.into(), 2.into())
    );
    let (_, old) = server.get("/api/v1/rules/gap?version=1");
    assert_eq!(old["text"], GAP, "{old}");
    let (status, _) = server.get("/api/v1/rules/gap?version=9");
    assert_eq!(status, 404);

    let (status, done) = server.request("DELETE", "/api/v1/rules/gap", None);
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["present"], false, "{done}");
    assert!(
        done["swap"]["dropped"].to_string().contains("gap_z"),
        "{done}"
    );
    let (status, gone) = server.get("/api/v1/rules/gap");
    assert_eq!(
        (status, gone["error"]["code"].as_str()),
        (404, Some("rule_not_found"))
    );
    let (status, gone) = server.request("DELETE", "/api/v1/rules/gap", None);
    assert_eq!(
        (status, gone["error"]["code"].as_str()),
        (404, Some("rule_not_found"))
    );

    // What was uploaded runs again after a restart.
    let (status, _) = put(&server, "gap", GAP);
    assert_eq!(status, 201);
    assert!(server.stop().success());
    let again = Server::start(plugins.path(), data.path(), &[]);
    let (_, listed) = again.get("/api/v1/rules");
    assert_eq!(listed["uploaded"], serde_json::json!(["gap"]), "{listed}");
    // BTC-USD's state came back with the checkpoint, so its old events would go back in
    // time: the same market under another symbol.
    let other = String::from_utf8(market_csv())
        .unwrap()
        .replace("BTC-USD", "ETH-USD");
    let (_, ingested) = again.post("/api/v1/events", Some("text/csv"), other.as_bytes());
    assert_eq!(ingested["alerts"], 2, "{ingested}");
}

#[test]
fn uploads_that_do_not_check_or_leave_the_folder_are_refused_and_change_nothing() {
    let plugins = plugin_dir(&[&built().statistical]);
    let data = tempfile::tempdir().unwrap();
    let secret = data.path().join("secret.adr");
    std::fs::write(&secret, GAP).unwrap();
    let server = Server::start(plugins.path(), data.path(), &[]);
    let (status, _) = put(&server, "gap", GAP);
    assert_eq!(status, 201);

    // adr check's diagnostics, naming the uploaded file and line, not the staging copy.
    let (status, refused) = put(&server, "bad", "feature x = nope(close)\n");
    assert_eq!(status, 422, "{refused}");
    assert_eq!(refused["error"]["code"], "rules_invalid");
    let diagnostics = refused["error"]["diagnostics"].as_array().unwrap();
    let unknown = diagnostics
        .iter()
        .find(|d| d["code"] == "E0202")
        .unwrap_or_else(|| panic!("{refused}"));
    assert_eq!(unknown["location"]["file"], "bad.adr", "{refused}");
    assert_eq!(unknown["location"]["line"], 1);
    assert!(!refused.to_string().contains(".staging"), "{refused}");

    // A second definition of what the configured rules define.
    let (status, refused) = put(&server, "twice", "feature returns = log_return(open)\n");
    assert_eq!(status, 422, "{refused}");

    // Replacing an upload with one that breaks another upload's reference is refused too.
    let (status, _) = put(
        &server,
        "uses_gap",
        "detector gap_mad = statistical.mad(window = 60, threshold = 9) on gap\nensemble gap_mad_move {\n    vote = any(gap_mad)\n}\n",
    );
    assert_eq!(status, 201);
    let (status, refused) = server.request("DELETE", "/api/v1/rules/gap", None);
    assert_eq!(status, 422, "uses_gap reads `gap`: {refused}");

    for sneaky in [
        "include \"../secret.adr\"\n",
        "include \"/etc/hostname\"\n",
        "include \"../../rules/market_stress.adr\"\n",
    ] {
        let (status, refused) = put(&server, "sneaky", sneaky);
        assert_eq!(status, 422, "{sneaky}: {refused}");
        assert_eq!(refused["error"]["code"], "include_outside", "{refused}");
    }
    // Uploads may include each other by name.
    let (status, done) = put(&server, "both", "include \"gap.adr\"\n");
    assert_eq!(status, 201, "{done}");

    // Names that are not plain, and a route's own name.
    for (path, want) in [
        ("/api/v1/rules/..%2Fescape", 400),
        ("/api/v1/rules/.hidden", 400),
        ("/api/v1/rules/a%20b", 400),
        ("/api/v1/rules/status", 405),
    ] {
        let (status, refused) = server.request("PUT", path, Some(GAP.as_bytes()));
        assert_eq!(status, want, "{path}: {refused}");
        assert!(refused["error"]["code"].is_string(), "{path}: {refused}");
    }
    let (status, refused) = server.request("PUT", "/api/v1/rules/binary", Some(&[0xff, 0xfe, 0]));
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (400, Some("bad_rule_text"))
    );

    // A rule set that checks but cannot be swapped into a running stream.
    let (status, refused) = put(
        &server,
        "whole",
        "detector whole = statistical.zscore(window = batch, threshold = 4) on returns\nensemble whole_move {\n    vote = any(whole)\n}\n",
    );
    assert_eq!(status, 409, "{refused}");
    assert_eq!(refused["error"]["code"], "reload_refused");

    // None of that changed the folder or the running rules.
    let (_, listed) = server.get("/api/v1/rules");
    assert_eq!(
        listed["uploaded"],
        serde_json::json!(["both", "gap", "uses_gap"]),
        "{listed}"
    );
    let files: Vec<String> = std::fs::read_dir(data.path().join("rules"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !files
            .iter()
            .any(|f| f.contains("whole") || f.contains("sneaky") || f.contains(".staging")),
        "{files:?}"
    );
    let (_, ingested) = server.post("/api/v1/events", Some("text/csv"), &market_csv());
    assert_eq!(ingested["events"], 4320, "{ingested}");
    assert_eq!(gap_alerts(&server), 1);

    // Changing rules needs a token, like every change.
    let anonymous = server
        .agent
        .put(format!("{}/api/v1/rules/gap", server.base))
        .send(GAP)
        .unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);
}

#[test]
fn alerts_notify_only_the_targets_the_service_allows() {
    let plugins = plugin_dir(&[&built().statistical]);
    let data = tempfile::tempdir().unwrap();
    let config = config_file(
        data.path(),
        "notify:\n  webhook_hosts: [\"hooks.example.com\", \"127.0.0.1:9\"]\n",
    );
    let server = Server::start(plugins.path(), data.path(), &["--config", &config]);
    let with_target = |target: &str| GAP.replace("notify log", &format!("notify {target}"));
    for (target, fine) in [
        ("webhook(\"https://hooks.example.com/adr\")", true),
        ("webhook(\"http://127.0.0.1:9/adr\")", true),
        (
            "webhook(\"http://169.254.169.254/latest/meta-data\")",
            false,
        ),
        ("webhook(\"http://hooks.example.com.evil.net/\")", false),
        ("webhook(\"http://127.0.0.1:8000/api/v1/events\")", false),
        ("file(\"/etc/cron.d/adr\")", false),
    ] {
        let (status, answer) = put(&server, "gap", &with_target(target));
        if fine {
            assert!(status == 200 || status == 201, "{target}: {answer}");
        } else {
            assert_eq!(status, 422, "{target}: {answer}");
            assert_eq!(answer["error"]["code"], "notify_not_allowed", "{answer}");
            assert!(
                answer["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("gap_move"),
                "{answer}"
            );
        }
    }
    assert!(!std::path::Path::new("/etc/cron.d/adr").exists());
    drop(server);

    // Configured rules that notify a forbidden target do not start.
    let rules = data.path().join("hooked.adr");
    let configured = std::fs::read_to_string(workspace().join("rules/market_stress.adr")).unwrap();
    // Its tests read data beside the example; the rules alone are what this needs.
    let configured = configured[..configured.find("\ntest ").unwrap_or(configured.len())]
        .replace("notify   log", "notify webhook(\"http://10.0.0.1/\")");
    assert!(configured.contains("webhook"), "the example notifies");
    std::fs::write(&rules, configured).unwrap();
    let stderr = refused_start(
        plugins.path(),
        data.path(),
        &["--rules", rules.to_str().unwrap()],
    );
    assert!(
        stderr.contains("alert `market_stress`") && stderr.contains("allows no webhook hosts"),
        "{stderr}"
    );
}

//! `adr serve` end to end, through the binary: events in over HTTP, alerts stored before
//! the answer and kept across a restart, metrics, refusals as JSON errors with codes, and
//! configuration errors that name the key and the line (issue 22, first slice).

use std::process::Command;
use std::time::Duration;

use adr_tests::serve::{config_file, refused_start, Server};
use adr_tests::{built, plugin_dir, workspace};

fn market_csv() -> Vec<u8> {
    std::fs::read(workspace().join("examples/market.csv")).unwrap()
}

#[test]
fn events_posted_fire_alerts_that_are_stored_counted_and_kept_across_a_restart() {
    let plugins = plugin_dir(&[&built().statistical]);
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(plugins.path(), data.path(), &[]);
    let (status, health) = server.get("/api/v1/health");
    assert_eq!(status, 200, "{health}");
    assert_eq!(health["ready"], true, "{health}");
    assert_eq!(health["backends"]["store"]["state"], "up", "{health}");

    let (status, done) = server.post("/api/v1/events", Some("text/csv"), &market_csv());
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["events"], 4320, "{done}");
    assert_eq!(done["alerts"], 1, "the example's flash crash: {done}");

    let (status, page) = server.get("/api/v1/alerts?symbol=BTC-USD&severity=high");
    assert_eq!(status, 200, "{page}");
    let alerts = page["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 1, "{page}");
    assert_eq!(alerts[0]["alert"]["alert"], "market_stress");
    assert_eq!(alerts[0]["alert"]["time"], "2025-01-15T10:31:00Z");
    let (_, none) = server.get("/api/v1/alerts?severity=critical");
    assert_eq!(none["alerts"].as_array().unwrap().len(), 0, "{none}");
    let (_, none) = server.get("/api/v1/alerts?to=2025-01-15T10:00:00Z");
    assert_eq!(none["alerts"].as_array().unwrap().len(), 0, "{none}");

    let metrics = server.text("/metrics");
    assert!(metrics.contains("events_in_total 4320"), "{metrics}");
    assert!(
        metrics.contains(r#"alerts_total{alert="market_stress",severity="high"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains("anomalies_detected_total{detector=\"market_stress\""),
        "{metrics}"
    );
    assert!(
        metrics.contains("detection_time_seconds_count 1"),
        "{metrics}"
    );

    let (status, stats) = server.get("/api/v1/detectors/stats");
    assert_eq!(status, 200, "{stats}");
    assert_eq!(stats["events"], 4320, "{stats}");
    assert_eq!(
        stats["ensembles"]["market_stress"]["anomalies"], 8,
        "{stats}"
    );
    assert_eq!(stats["alerts"]["market_stress"]["high"], 1, "{stats}");
    assert_eq!(stats["detection_seconds"]["requests"], 1, "{stats}");
    assert!(
        stats["detection_seconds"]["p99"].as_f64().unwrap() > 0.0,
        "{stats}"
    );

    let (status, plugins_doc) = server.get("/api/v1/plugins");
    assert_eq!(status, 200);
    assert_eq!(
        plugins_doc["plugins"][0]["family"], "statistical",
        "{plugins_doc}"
    );
    let (_, rules) = server.get("/api/v1/rules/status");
    assert_eq!(rules["generation"], 0, "{rules}");

    let exit = server.stop();
    assert!(exit.success(), "SIGTERM drains and exits cleanly: {exit:?}");

    // The alert is in the store after the restart.
    let again = Server::start(plugins.path(), data.path(), &[]);
    let (_, page) = again.get("/api/v1/alerts");
    assert_eq!(page["alerts"].as_array().unwrap().len(), 1, "{page}");
    assert!(again.stop().success());
}

#[test]
fn bad_requests_get_json_errors_with_codes_and_change_nothing() {
    let plugins = plugin_dir(&[&built().statistical]);
    let data = tempfile::tempdir().unwrap();
    let config = config_file(
        data.path(),
        "limits:\n  max_body_bytes: 100000\n  max_batch_rows: 1000\n",
    );
    let server = Server::start(plugins.path(), data.path(), &["--config", &config]);
    let csv = market_csv();
    let lines: Vec<&[u8]> = csv.split(|&b| b == b'\n').collect();
    let header_and = |rows: usize| lines[..=rows].join(&b'\n');
    // (what, content type, body, status, error code)
    type Case<'a> = (&'a str, Option<&'a str>, Vec<u8>, u16, &'a str);
    let cases: Vec<Case<'_>> = vec![
        (
            // just over it: a body much larger is cut off while it is sent
            "a body over the limit",
            Some("text/csv"),
            csv[..100_050].to_vec(),
            413,
            "body_too_large",
        ),
        (
            "more rows than a request may carry",
            Some("text/csv"),
            header_and(1001),
            413,
            "too_many_events",
        ),
        (
            "a field the rules read is missing",
            Some("text/csv"),
            b"ts,symbol,close\n2025-01-15T10:00:00Z,BTC,1\n".to_vec(),
            400,
            "bad_events",
        ),
        (
            "malformed JSON lines",
            Some("application/x-ndjson"),
            b"{\"ts\": 1, \"symbol\": \n".to_vec(),
            400,
            "bad_events",
        ),
        (
            "a number that is not one",
            Some("text/csv"),
            b"ts,symbol,open,high,low,close,volume\n2025-01-15T10:00:00Z,BTC,1,2,3,x,5\n".to_vec(),
            400,
            "bad_events",
        ),
        (
            "a key that is not UTF-8",
            Some("text/csv"),
            b"ts,symbol,open,high,low,close,volume\n2025-01-15T10:00:00Z,\xff\xfe,1,2,3,4,5\n"
                .to_vec(),
            400,
            "bad_events",
        ),
        (
            "another media type",
            Some("application/xml"),
            b"<events/>".to_vec(),
            415,
            "unsupported_media_type",
        ),
    ];
    for (what, content_type, body, want, code) in cases {
        let (status, doc) = server.post("/api/v1/events", content_type, &body);
        assert_eq!(status, want, "{what}: {doc}");
        if !code.is_empty() {
            assert_eq!(doc["error"]["code"], code, "{what}: {doc}");
            assert!(
                doc["error"]["message"]
                    .as_str()
                    .is_some_and(|m| !m.is_empty()),
                "{what}"
            );
        }
    }
    for (query, want) in [
        ("/api/v1/alerts?severity=extreme", "bad_query"),
        ("/api/v1/alerts?from=yesterday", "bad_query"),
        ("/api/v1/alerts?limit=0", "bad_query"),
        ("/api/v1/alerts?colour=red", "bad_query"),
        ("/api/v1/nothing", "not_found"),
        ("/ws/anomalies", "not_a_websocket"),
    ] {
        let (status, doc) = server.get(query);
        assert!(status == 400 || status == 404, "{query}: {status} {doc}");
        assert_eq!(doc["error"]["code"], want, "{query}: {doc}");
    }
    // Nothing refused was evaluated, and the service still serves.
    let metrics = server.text("/metrics");
    assert!(metrics.contains("events_in_total 0\n"), "{metrics}");
    assert!(metrics.contains("requests_refused_total 7\n"), "{metrics}");
    // A good request after them is taken.
    let (status, done) = server.post("/api/v1/events", None, &header_and(100));
    assert_eq!(
        (status, &done["events"]),
        (200, &serde_json::json!(100)),
        "{done}"
    );
    let (status, health) = server.get("/api/v1/health");
    assert_eq!(
        (status, &health["ready"]),
        (200, &serde_json::json!(true)),
        "{health}"
    );
    assert!(server.stop().success());
}

#[test]
fn configuration_errors_name_the_key_and_line_and_print_config_hides_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("config.yaml");
    std::fs::write(&bad, "api:\n  prot: 80\n").unwrap();
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let mut command = Command::new(&built().adr);
        command.arg("serve").args(args).current_dir(dir.path());
        for (k, v) in env {
            command.env(k, v);
        }
        let out = command.output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, _, stderr) = run(&["--config", bad.to_str().unwrap()], &[]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("line 2") && stderr.contains("unknown field `prot`"),
        "{stderr}"
    );
    for timeout in ["0", "3601"] {
        std::fs::write(
            &bad,
            format!("limits:\n  read_timeout_seconds: {timeout}\n"),
        )
        .unwrap();
        let (code, _, stderr) = run(&["--config", bad.to_str().unwrap()], &[]);
        assert_eq!(code, 1, "{stderr}");
        assert!(
            stderr.contains("limits.read_timeout_seconds: takes 1 to 3600"),
            "{stderr}"
        );
    }
    // ./config.yaml is read by default; the environment overrides it, flags override both.
    std::fs::write(&bad, "api:\n  port: 9000\n  host: 0.0.0.0\n").unwrap();
    let (code, _, stderr) = run(&["--print-config"], &[("API_PORT", "http")]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("API_PORT=\"http\""), "{stderr}");
    let (code, stdout, stderr) = run(
        &["--print-config", "--host", "127.0.0.2"],
        &[("API_PORT", "9100")],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("port: 9100"), "{stdout}");
    assert!(stdout.contains("host: \"127.0.0.2\""), "{stdout}");
}

#[test]
fn models_train_detect_predict_survive_a_restart_and_refuse_what_they_cannot_do() {
    let plugins = plugin_dir(&[&built().statistical, &built().ml]);
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(plugins.path(), data.path(), &[]);
    // A grid over the unit square; the forest learns it.
    let training: Vec<serde_json::Value> = (0..200)
        .map(|i| serde_json::json!([f64::from(i % 20) / 20.0, f64::from(i / 20) / 10.0]))
        .collect();
    let (status, model) = server.post_json(
        "/api/v1/detectors/train",
        &serde_json::json!({
            "detector": "ml.isolation_forest",
            "params": {"trees": 50, "seed": 7},
            "columns": ["x", "y"],
            "rows": training,
        }),
    );
    assert_eq!(status, 201, "{model}");
    let id = model["model_id"].as_str().unwrap().to_owned();
    assert_eq!(model["rows_trained"], 200, "{model}");
    assert_eq!(
        model["params"]["train"], "200",
        "trains on every row given: {model}"
    );

    let rows = serde_json::json!([[0.5, 0.5], [0.2, 0.7], [5.0, 5.0]]);
    let detect = serde_json::json!({"model_id": id, "rows": rows});
    let (status, first) = server.post_json("/api/v1/detectors/detect", &detect);
    assert_eq!(status, 200, "{first}");
    let scores: Vec<f64> = first["scores"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_f64().unwrap())
        .collect();
    assert!(scores[2] > scores[0] && scores[2] > scores[1], "{first}");
    assert_eq!(
        first["labels"][2], 1,
        "the far point is an outlier: {first}"
    );
    let (_, again) = server.post_json("/api/v1/detectors/detect", &detect);
    assert_eq!(again, first, "detect leaves the model as it was");

    let (status, one) = server.post_json(
        "/api/v1/detectors/predict",
        &serde_json::json!({"model_id": id, "values": [5.0, 5.0]}),
    );
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["is_anomaly"], true, "{one}");

    // Refusals, each with its code.
    for (path, body, want, code) in [
        (
            "/api/v1/detectors/train",
            serde_json::json!({"detector": "ml.isolation_forst", "columns": ["x"], "rows": [[1.0]]}),
            400,
            "unknown_detector",
        ),
        (
            "/api/v1/detectors/train",
            serde_json::json!({"detector": "ml.isolation_forest", "params": {"trees": -1}, "columns": ["x"], "rows": [[1.0], [2.0]]}),
            400,
            "bad_params",
        ),
        (
            "/api/v1/detectors/train",
            serde_json::json!({"detector": "ml.isolation_forest", "columns": ["x", "y"], "rows": [[1.0]]}),
            400,
            "bad_rows",
        ),
        (
            "/api/v1/detectors/train",
            serde_json::json!({"detector": "ml.isolation_forest", "columns": ["x"], "rows": []}),
            400,
            "bad_rows",
        ),
        (
            "/api/v1/detectors/train",
            serde_json::json!({"detector": "ml.isolation_forest", "columns": ["x"], "rows": [["one"]]}),
            400,
            "bad_json",
        ),
        (
            "/api/v1/detectors/detect",
            serde_json::json!({"model_id": "m999", "rows": [[1.0, 2.0]]}),
            404,
            "model_not_found",
        ),
        (
            "/api/v1/detectors/predict",
            serde_json::json!({"model_id": id, "values": [1.0]}),
            400,
            "bad_rows",
        ),
    ] {
        let (status, doc) = server.post_json(path, &body);
        assert_eq!(status, want, "{body}: {doc}");
        assert_eq!(doc["error"]["code"], code, "{body}: {doc}");
    }
    assert!(server.stop().success());

    // After a restart the model scores the same.
    let server = Server::start(plugins.path(), data.path(), &[]);
    let (_, listed) = server.get("/api/v1/models");
    assert_eq!(listed["models"].as_array().unwrap().len(), 1, "{listed}");
    let (_, after) = server.post_json("/api/v1/detectors/detect", &detect);
    assert_eq!(
        after, first,
        "the stored model scores as before the restart"
    );
    assert_eq!(server.delete(&format!("/api/v1/models/{id}")), 204);
    assert_eq!(server.delete(&format!("/api/v1/models/{id}")), 404);
    let (status, _) = server.post_json("/api/v1/detectors/detect", &detect);
    assert_eq!(status, 404);
    assert!(server.stop().success());
}

type Socket = tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<std::net::TcpStream>>;

fn socket(server: &Server) -> Socket {
    let url = format!(
        "{}/ws/anomalies?token={}",
        server.base.replacen("http://", "ws://", 1),
        server.token
    );
    let (socket, _) = tungstenite::connect(url).expect("the WebSocket opens");
    if let tungstenite::stream::MaybeTlsStream::Plain(tcp) = socket.get_ref() {
        tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    }
    socket
}

fn send(socket: &mut Socket, text: String) -> serde_json::Value {
    socket.send(tungstenite::Message::text(text)).unwrap();
    receive(socket)
}

fn receive(socket: &mut Socket) -> serde_json::Value {
    loop {
        match socket.read().expect("a frame") {
            tungstenite::Message::Text(text) => return serde_json::from_str(&text).unwrap(),
            tungstenite::Message::Ping(_) | tungstenite::Message::Pong(_) => {}
            other => panic!("unexpected frame {other:?}"),
        }
    }
}

/// The example's rows as JSON event objects.
fn market_events() -> Vec<serde_json::Value> {
    let text = String::from_utf8(market_csv()).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    lines
        .map(|line| {
            let object: serde_json::Map<String, serde_json::Value> = header
                .iter()
                .zip(line.split(','))
                .map(|(h, v)| {
                    let value = v
                        .parse::<f64>()
                        .map_or_else(|_| serde_json::json!(v), |x| serde_json::json!(x));
                    ((*h).to_owned(), value)
                })
                .collect();
            serde_json::Value::Object(object)
        })
        .collect()
}

#[test]
fn the_websocket_answers_each_event_and_streams_alerts_to_subscribers() {
    let plugins = plugin_dir(&[&built().statistical]);
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(plugins.path(), data.path(), &[]);
    let mut subscriber = socket(&server);
    let answer = send(
        &mut subscriber,
        r#"{"subscribe": "alerts", "symbol": "BTC-USD", "severity": "high"}"#.into(),
    );
    assert_eq!(answer["subscribed"], "alerts", "{answer}");

    let mut client = socket(&server);
    for (frame, want) in [
        ("not json".to_owned(), "bad_json"),
        ("42".to_owned(), "bad_events"),
        (r#"{"subscribe": "trades"}"#.to_owned(), "bad_subscription"),
        (
            r#"[{"ts": "2025-01-15T00:00:00Z"}]"#.to_owned(),
            "bad_events",
        ),
    ] {
        let answer = send(&mut client, frame.clone());
        assert_eq!(answer["error"]["code"], want, "{frame}: {answer}");
    }
    client
        .send(tungstenite::Message::binary(vec![1, 2, 3]))
        .unwrap();
    assert_eq!(receive(&mut client)["error"]["code"], "bad_frame");

    let events = market_events();
    let mut seen = 0;
    let mut alerts = 0;
    for frame in events.chunks(500) {
        let answer = send(
            &mut client,
            serde_json::Value::from(frame.to_vec()).to_string(),
        );
        let results = answer["results"]
            .as_array()
            .unwrap_or_else(|| panic!("{answer}"));
        assert_eq!(results.len(), frame.len(), "one result per event");
        assert_eq!(results[0]["key"], "BTC-USD");
        assert!(
            results[0]["ensembles"]["market_stress"]["verdict"].is_string(),
            "{answer}"
        );
        seen += results.len();
        alerts += answer["alerts"].as_array().unwrap().len();
    }
    assert_eq!((seen, alerts), (4320, 1));
    let alert = receive(&mut subscriber);
    assert_eq!(alert["alert"]["alert"], "market_stress", "{alert}");
    assert_eq!(alert["alert"]["time"], "2025-01-15T10:31:00Z", "{alert}");
    drop((client, subscriber));
    assert!(server.stop().success());
}

#[test]
fn a_slow_subscriber_loses_the_oldest_alerts_and_is_told_how_many() {
    let plugins = plugin_dir(&[&built().statistical]);
    let data = tempfile::tempdir().unwrap();
    let rules = data.path().join("spikes.adr");
    std::fs::write(
        &rules,
        "input trades {\n    time = ts\n    key = symbol\n    fields = price\n}\n\
         detector jump = statistical.zscore(window = 2, threshold = 3) on price\n\
         ensemble move {\n    vote = any(jump)\n}\n\
         alert move {\n    when severity >= low for 1 events\n}\n",
    )
    .unwrap();
    let config = config_file(data.path(), "limits:\n  subscriber_queue: 4\n");
    let server = Server::start(
        plugins.path(),
        data.path(),
        &["--config", &config, "--rules", rules.to_str().unwrap()],
    );
    let mut subscriber = socket(&server);
    assert_eq!(
        send(&mut subscriber, r#"{"subscribe": "alerts"}"#.into())["subscribed"],
        "alerts"
    );
    // 600 keys, each spiking at its third event: 600 alerts in one burst.
    let mut events = Vec::new();
    for (step, price) in [0.0, 1.0, 100.0].into_iter().enumerate() {
        for k in 0..600 {
            events.push(serde_json::json!({
                "ts": 1_700_000_000 + (step * 600 + k) as i64,
                "symbol": format!("S{k}"),
                "price": price,
            }));
        }
    }
    let mut client = socket(&server);
    let answer = send(&mut client, serde_json::Value::from(events).to_string());
    assert_eq!(
        answer["alerts"].as_array().unwrap().len(),
        600,
        "{}",
        answer["alerts"]
    );
    let (mut received, mut dropped) = (0u64, 0u64);
    while received + dropped < 600 {
        let message = receive(&mut subscriber);
        if let Some(n) = message["dropped"].as_u64() {
            dropped += n;
        } else {
            assert!(message["alert"].is_object(), "{message}");
            received += 1;
        }
    }
    assert!(dropped > 0, "a queue of 4 cannot hold a burst of 600");
    assert_eq!(
        received + dropped,
        600,
        "every alert is received or counted"
    );
    let (_, stored) = server.get("/api/v1/alerts?limit=1000");
    assert_eq!(
        stored["alerts"].as_array().unwrap().len(),
        600,
        "all stored all the same"
    );
    drop((client, subscriber));
    assert!(server.stop().success());
}

#[test]
fn calls_that_change_something_need_a_token_and_reads_may_too() {
    let plugins = plugin_dir(&[&built().statistical]);
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(plugins.path(), data.path(), &[]);
    let call = |method: &str, path: &str, token: Option<&str>| {
        let url = format!("{}{path}", server.base);
        let request = match method {
            "POST" => server.agent.post(url).header("Content-Type", "text/csv"),
            _ => server.agent.get(url).force_send_body(),
        };
        let request = match token {
            Some(t) => request.header("Authorization", format!("Bearer {t}")),
            None => request,
        };
        let mut response = request.send("ts,symbol,close\n".as_bytes()).unwrap();
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().unwrap();
        (
            status,
            serde_json::from_str::<serde_json::Value>(&text).unwrap_or_default(),
        )
    };
    let (status, doc) = call("POST", "/api/v1/events", None);
    assert_eq!(
        (status, &doc["error"]["code"]),
        (401, &serde_json::json!("missing_token")),
        "{doc}"
    );
    let (status, doc) = call("POST", "/api/v1/events", Some("adr_0000"));
    assert_eq!(
        (status, &doc["error"]["code"]),
        (401, &serde_json::json!("bad_token")),
        "{doc}"
    );
    assert_eq!(
        call("GET", "/api/v1/alerts", None).0,
        200,
        "reads are open by default"
    );
    let url = format!(
        "{}/ws/anomalies",
        server.base.replacen("http://", "ws://", 1)
    );
    match tungstenite::connect(url) {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status().as_u16(), 401),
        other => panic!(
            "a WebSocket without a token was not refused: {:?}",
            other.map(|_| ())
        ),
    }
    assert!(server.stop().success());

    let closed = tempfile::tempdir().unwrap();
    let config = config_file(closed.path(), "auth:\n  open_reads: false\n");
    let server = Server::start(plugins.path(), closed.path(), &["--config", &config]);
    let (status, doc) = server
        .agent
        .get(format!("{}/api/v1/alerts", server.base))
        .call()
        .map(|mut r| {
            let status = r.status().as_u16();
            (status, r.body_mut().read_to_string().unwrap())
        })
        .unwrap();
    assert_eq!(status, 401, "{doc}");
    let (status, _) = server
        .agent
        .get(format!("{}/api/v1/health", server.base))
        .call()
        .map(|r| (r.status().as_u16(), ()))
        .unwrap();
    assert_eq!(status, 200, "health is always open");
    assert_eq!(server.get("/api/v1/alerts").0, 200, "with the token");
    assert!(server.stop().success());
}

#[test]
fn browsers_may_call_from_the_configured_origins_only() {
    let plugins = plugin_dir(&[&built().statistical]);
    let data = tempfile::tempdir().unwrap();
    let config = config_file(
        data.path(),
        "api:\n  cors_origins: [\"https://dash.example.com\"]\n",
    );
    let server = Server::start(plugins.path(), data.path(), &["--config", &config]);
    let preflight = |origin: &str| {
        let request = ureq::http::Request::builder()
            .method("OPTIONS")
            .uri(format!("{}/api/v1/events", server.base))
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "POST")
            .header(
                "Access-Control-Request-Headers",
                "authorization, content-type",
            )
            .body(Vec::<u8>::new())
            .unwrap();
        let response = server.agent.run(request).unwrap();
        response
            .headers()
            .get("access-control-allow-origin")
            .map(|v| v.to_str().unwrap().to_owned())
    };
    assert_eq!(
        preflight("https://dash.example.com").as_deref(),
        Some("https://dash.example.com")
    );
    assert_eq!(preflight("https://evil.example.com"), None);

    // A bad origin in the configuration is an error naming the setting.
    let config = config_file(
        data.path(),
        "api:\n  cors_origins: [\"https://x.com/path\"]\n",
    );
    let out = Command::new(&built().adr)
        .args(["serve", "--print-config", "--config", &config])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("api.cors_origins"), "{stderr}");
}

#[test]
fn json_logs_carry_the_seeds_fields_on_each_alert() {
    let plugins = plugin_dir(&[&built().statistical]);
    let data = tempfile::tempdir().unwrap();
    let server = Server::start_with(
        plugins.path(),
        data.path(),
        &[],
        &[("LOG_FORMAT", "json".into())],
    );
    let (status, done) = server.post("/api/v1/events", Some("text/csv"), &market_csv());
    assert_eq!((status, done["alerts"].as_u64()), (200, Some(1)), "{done}");
    let mut seen = Vec::new();
    let alert = loop {
        let line = server
            .stderr
            .lock()
            .unwrap()
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|_| panic!("no alert line among {seen:#?}"));
        let doc: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert_eq!(
            line.matches("\"timestamp\"").count(),
            usize::from(doc.get("timestamp").is_some()),
            "each key once: {line}"
        );
        if doc["message"] == "alert" {
            break doc;
        }
        seen.push(line);
    };
    assert_eq!(alert["level"], "INFO", "{alert}");
    assert_eq!(alert["detector_type"], "market_stress", "{alert}");
    assert_eq!(alert["symbol"], "BTC-USD", "{alert}");
    assert_eq!(alert["severity"], "high", "{alert}");
    assert_eq!(alert["timestamp"], "2025-01-15T10:31:00Z", "{alert}");
    assert!(alert["anomaly_score"].as_f64().is_some(), "{alert}");
    assert!(alert["timestamp"].is_string());
}

#[test]
fn the_state_budget_bounds_memory_and_rules_whose_one_key_does_not_fit_do_not_start() {
    let plugins = plugin_dir(&[&built().statistical]);
    let data = tempfile::tempdir().unwrap();
    let config = config_file(data.path(), "limits:\n  max_state_bytes: 1000\n");
    let stderr = refused_start(plugins.path(), data.path(), &["--config", &config]);
    assert!(stderr.contains("budget"), "{stderr}");
}

/// Each client's events: the example's, under a symbol of the client's own.
fn client_events(client: usize, events: &[serde_json::Value]) -> Vec<serde_json::Value> {
    events
        .iter()
        .map(|e| {
            let mut e = e.clone();
            e["symbol"] = serde_json::json!(format!("BTC-USD-{client}"));
            e
        })
        .collect()
}

/// What a client was answered, frame by frame: each event's judgements, and the alerts
/// (without their row, which numbers the events of every client together).
fn answers(
    socket: &mut Socket,
    events: &[serde_json::Value],
    frame: usize,
) -> Vec<serde_json::Value> {
    events
        .chunks(frame)
        .map(|chunk| {
            let mut answer = send(socket, serde_json::Value::from(chunk.to_vec()).to_string());
            assert!(answer["results"].is_array(), "{answer}");
            for alert in answer["alerts"].as_array_mut().unwrap() {
                alert.as_object_mut().unwrap().remove("row");
            }
            answer
        })
        .collect()
}

#[test]
fn requests_evaluated_together_are_answered_as_if_each_were_alone() {
    let plugins = plugin_dir(&[&built().statistical]);
    let events = market_events();
    let events = &events[..1500];
    let clients = 12;
    let frame = 25;

    // One client at a time: every request evaluated alone.
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(plugins.path(), data.path(), &[]);
    let mut client = socket(&server);
    let alone: Vec<Vec<serde_json::Value>> = (0..clients)
        .map(|c| answers(&mut client, &client_events(c, events), frame))
        .collect();
    assert!(server.stop().success());

    // All at once, with a client whose second frame goes back in time, and 300 more
    // connections that each send one event: the engine takes what waits together.
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(plugins.path(), data.path(), &[]);
    let together: Vec<Vec<serde_json::Value>> = std::thread::scope(|scope| {
        let server = &server;
        let runs: Vec<_> = (0..clients)
            .map(|c| {
                scope.spawn(move || answers(&mut socket(server), &client_events(c, events), frame))
            })
            .collect();
        let late = scope.spawn(move || {
            let mut late = socket(server);
            let mine = client_events(99, &events[..40]);
            let first = send(
                &mut late,
                serde_json::Value::from(mine[20..].to_vec()).to_string(),
            );
            let back = send(
                &mut late,
                serde_json::Value::from(mine[..20].to_vec()).to_string(),
            );
            (first, back)
        });
        let crowd: Vec<_> = (0..300)
            .map(|i| {
                scope.spawn(move || {
                    let mut one = socket(server);
                    let event = client_events(1000 + i, &events[..1]);
                    send(&mut one, serde_json::Value::from(event).to_string())
                })
            })
            .collect();
        for answer in crowd.into_iter().map(|h| h.join().unwrap()) {
            assert_eq!(
                answer["results"].as_array().map(Vec::len),
                Some(1),
                "{answer}"
            );
        }
        let (first, back) = late.join().unwrap();
        assert_eq!(
            first["results"].as_array().map(Vec::len),
            Some(20),
            "{first}"
        );
        assert_eq!(back["error"]["code"], "events_refused", "{back}");
        runs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (c, (alone, together)) in alone.iter().zip(&together).enumerate() {
        assert_eq!(alone.len(), together.len());
        for (i, (a, t)) in alone.iter().zip(together).enumerate() {
            assert_eq!(a, t, "client {c}, frame {i}");
        }
    }
    let metrics = server.text("/metrics");
    let taken = clients * events.len() + 20 + 300;
    assert!(
        metrics.contains(&format!("events_in_total {taken}\n")),
        "{metrics}"
    );
    assert!(server.stop().success());
}

#[test]
fn a_model_predicting_for_many_clients_at_once_stores_the_state_of_its_last_answer() {
    let plugins = plugin_dir(&[&built().statistical]);
    let data = tempfile::tempdir().unwrap();
    let train = serde_json::json!({
        "detector": "statistical.zscore",
        "params": {"window": 500, "threshold": 3},
        "columns": ["price"],
        "rows": (0..100).map(|i| [100.0 + f64::from(i % 5)]).collect::<Vec<_>>(),
    });
    // The same value each call, so that the order of the calls does not matter.
    let predict = |server: &Server, id: &str| {
        let (status, answer) = server.post_json(
            "/api/v1/detectors/predict",
            &serde_json::json!({"model_id": id, "values": [101.5]}),
        );
        assert_eq!(status, 200, "{answer}");
        answer
    };
    let (clients, calls) = (8, 40);

    // One client, call after call.
    let reference_data = tempfile::tempdir().unwrap();
    let reference = Server::start(plugins.path(), reference_data.path(), &[]);
    let (_, model) = reference.post_json("/api/v1/detectors/train", &train);
    let id = model["model_id"].as_str().unwrap().to_owned();
    for _ in 0..clients * calls {
        predict(&reference, &id);
    }
    let want = predict(&reference, &id);

    // Eight at once, then a restart: the state stored is the one the last answer left.
    let server = Server::start(plugins.path(), data.path(), &[]);
    let (_, model) = server.post_json("/api/v1/detectors/train", &train);
    let id = model["model_id"].as_str().unwrap().to_owned();
    std::thread::scope(|scope| {
        for _ in 0..clients {
            scope.spawn(|| {
                for _ in 0..calls {
                    predict(&server, &id);
                }
            });
        }
    });
    assert!(server.stop().success());
    let server = Server::start(plugins.path(), data.path(), &[]);
    assert_eq!(predict(&server, &id), want);
    assert!(server.stop().success());
    assert!(reference.stop().success());
}

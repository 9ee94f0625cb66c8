//! `adr serve` under hostile clients (issue 22): events with ten thousand fields, a
//! WebSocket client that sends and never reads, a flood of connections that say nothing,
//! requests whose headers or body never finish.
//! Each time the service stays up, keeps answering everyone else, and refuses clearly
//! what it refuses.

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use adr_tests::serve::Server;
use adr_tests::{built, plugin_dir};

fn healthy(server: &Server) {
    let (status, health) = server.get("/api/v1/health");
    assert_eq!(status, 200, "{health}");
}

#[test]
fn events_with_ten_thousand_fields_are_read_for_the_fields_the_rules_read() {
    let plugins = plugin_dir(&[&built().statistical]);
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(plugins.path(), data.path(), &[]);
    let mut object = serde_json::Map::new();
    for i in 0..10_000 {
        object.insert(format!("noise_{i}"), (i as f64).into());
    }
    for (k, v) in [
        ("open", 1.0),
        ("high", 1.1),
        ("low", 0.9),
        ("close", 1.0),
        ("volume", 5.0),
    ] {
        object.insert(k.into(), v.into());
    }
    object.insert("symbol".into(), "WIDE".into());
    let mut body = String::new();
    for minute in 0..20 {
        object.insert("ts".into(), (1_736_900_000 + 60 * minute).into());
        body.push_str(&serde_json::Value::Object(object.clone()).to_string());
        body.push('\n');
    }
    let started = Instant::now();
    let (status, done) = server.post(
        "/api/v1/events",
        Some("application/x-ndjson"),
        body.as_bytes(),
    );
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["events"], 20);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );

    // The same as CSV: a header of ten thousand columns.
    let mut csv = String::from("ts,symbol,open,high,low,close,volume");
    for i in 0..10_000 {
        csv.push_str(&format!(",noise_{i}"));
    }
    csv.push('\n');
    for minute in 20..40 {
        csv.push_str(&format!(
            "{},WIDE,1,1.1,0.9,1,5",
            1_736_900_000 + 60 * minute
        ));
        for i in 0..10_000 {
            csv.push_str(&format!(",{i}"));
        }
        csv.push('\n');
    }
    let (status, done) = server.post("/api/v1/events", Some("text/csv"), csv.as_bytes());
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["events"], 20);

    // Over the WebSocket too.
    let (mut socket, _) = tungstenite::connect(format!(
        "{}/ws/anomalies?token={}",
        server.base.replacen("http", "ws", 1),
        server.token
    ))
    .unwrap();
    object.insert("ts".into(), (1_736_900_000 + 60 * 41).into());
    socket
        .send(tungstenite::Message::text(
            serde_json::Value::Object(object).to_string(),
        ))
        .unwrap();
    let answer: serde_json::Value =
        serde_json::from_str(socket.read().unwrap().to_text().unwrap()).unwrap();
    assert_eq!(
        answer["results"].as_array().map(Vec::len),
        Some(1),
        "{answer}"
    );
    healthy(&server);
}

#[test]
fn a_client_that_sends_and_never_reads_holds_up_no_one_else() {
    let plugins = plugin_dir(&[&built().statistical]);
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(plugins.path(), data.path(), &[]);
    let url = format!(
        "{}/ws/anomalies?token={}",
        server.base.replacen("http", "ws", 1),
        server.token
    );
    let (mut greedy, _) = tungstenite::connect(&url).unwrap();
    if let tungstenite::stream::MaybeTlsStream::Plain(tcp) = greedy.get_ref() {
        tcp.set_write_timeout(Some(Duration::from_millis(200)))
            .unwrap();
    }
    // Frames of 200 events, never reading an answer, until the server stops taking them
    // (its answers fill the socket) or 3 s pass.
    let started = Instant::now();
    let mut sent = 0u64;
    while started.elapsed() < Duration::from_secs(3) {
        let frame: Vec<serde_json::Value> = (0..200)
            .map(|i| {
                serde_json::json!({
                    "ts": 1_736_900_000 + (sent * 200 + i) as i64,
                    "symbol": "GREEDY",
                    "open": 1, "high": 1, "low": 1, "close": 1, "volume": 1,
                })
            })
            .collect();
        if greedy
            .send(tungstenite::Message::text(
                serde_json::to_string(&frame).unwrap(),
            ))
            .is_err()
        {
            break;
        }
        sent += 1;
    }
    assert!(sent > 0);
    // Everyone else is answered promptly meanwhile.
    for minute in 0..5i64 {
        let asked = Instant::now();
        healthy(&server);
        let (status, _) = server.post(
            "/api/v1/events",
            Some("application/x-ndjson"),
            format!(
                "{{\"ts\": {}, \"symbol\": \"POLITE\", \"open\": 1, \"high\": 1, \"low\": 1, \"close\": 1, \"volume\": 1}}\n",
                1_736_900_000 + 60 * minute
            )
            .as_bytes(),
        );
        assert_eq!(status, 200);
        assert!(
            asked.elapsed() < Duration::from_secs(5),
            "{:?}",
            asked.elapsed()
        );
    }
    drop(greedy);
    healthy(&server);
    assert!(
        server.stop().success(),
        "a clean stop with a stuck client gone"
    );
}

#[test]
fn a_flood_of_silent_connections_does_not_stop_the_service() {
    let plugins = plugin_dir(&[&built().statistical]);
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(plugins.path(), data.path(), &[]);
    let address = server.base.trim_start_matches("http://").to_owned();
    let mut silent = Vec::new();
    for i in 0..600 {
        let mut c = TcpStream::connect(&address).unwrap();
        // Half say nothing; half start a request and never finish it.
        if i % 2 == 1 {
            let _ = c.write_all(
                b"POST /api/v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\nts,sym",
            );
        }
        silent.push(c);
    }
    for _ in 0..5 {
        healthy(&server);
    }
    let (status, done) = server.post(
        "/api/v1/events",
        Some("text/csv"),
        b"ts,symbol,open,high,low,close,volume\n1736900000,FLOOD,1,1,1,1,1\n",
    );
    assert_eq!(status, 200, "{done}");
    drop(silent);
    healthy(&server);
}

#[test]
fn connections_that_never_finish_a_request_are_closed_or_refused() {
    let plugins = plugin_dir(&[&built().statistical]);
    let data = tempfile::tempdir().unwrap();
    let config = adr_tests::serve::config_file(data.path(), "limits:\n  read_timeout_seconds: 1\n");
    let server = Server::start(plugins.path(), data.path(), &["--config", &config]);
    let address = server.base.trim_start_matches("http://").to_owned();
    let started = Instant::now();
    let mut slow = Vec::new();
    for opening in [
        &b""[..],
        b"GET /api/v1/health HTTP/1.1\r\n",
        b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nX-Slow: 1",
    ] {
        let mut c = TcpStream::connect(&address).unwrap();
        c.write_all(opening).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        slow.push(c);
    }
    for mut c in slow {
        let mut answer = Vec::new();
        // The server closes it (an answer first, if it gives one): the read ends.
        let read = std::io::Read::read_to_end(&mut c, &mut answer);
        assert!(
            read.is_ok(),
            "still open after {:?}: {read:?}",
            started.elapsed()
        );
        let text = String::from_utf8_lossy(&answer);
        assert!(
            text.is_empty() || text.starts_with("HTTP/1.1 408"),
            "{text}"
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    // A body that stops arriving, read as bytes or as JSON: refused with its code.
    for (path, content_type, opening) in [
        ("/api/v1/events", "text/csv", "ts,symbol,close\n"),
        (
            "/api/v1/detectors/train",
            "application/json",
            "{\"detector\": ",
        ),
    ] {
        let mut stalled = TcpStream::connect(&address).unwrap();
        stalled
            .write_all(
                format!(
                    "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
                     Content-Type: {content_type}\r\nContent-Length: 1000\r\n\r\n{opening}",
                    server.token
                )
                .as_bytes(),
            )
            .unwrap();
        stalled
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut answer = Vec::new();
        let mut buffer = [0u8; 4096];
        while !String::from_utf8_lossy(&answer).contains("body_timeout") {
            match std::io::Read::read(&mut stalled, &mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buffer[..n]),
            }
        }
        let answer = String::from_utf8_lossy(&answer);
        assert!(
            answer.starts_with("HTTP/1.1 408") && answer.contains("body_timeout"),
            "{path}: {answer}"
        );
    }
    // A client that takes its time within the limit is served.
    let mut patient = TcpStream::connect(&address).unwrap();
    patient
        .write_all(b"GET /api/v1/health HTTP/1.1\r\n")
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    patient
        .write_all(b"Host: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut patient, &mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    healthy(&server);
    assert!(server.stop().success());
}

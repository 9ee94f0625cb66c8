//! `adr serve` exports traces over OTLP/HTTP when `enable_jaeger` is on (issue 22): an
//! in-process collector receives the request spans with the engine's evaluation and the
//! store's write inside them, sent by the time the service has stopped; a collector that
//! never answers costs the requests nothing.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use adr_tests::serve::{config_file, Server};
use adr_tests::{built, plugin_dir, workspace};

/// What the collector received: each request's path, content type and body.
type Received = Arc<Mutex<Vec<(String, String, Vec<u8>)>>>;

/// A collector on a free port that answers every export with 200 (or, `silent`, never).
fn collector(silent: bool) -> (String, Received) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let received: Received = Arc::default();
    let store = Arc::clone(&received);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let store = Arc::clone(&store);
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let path = line
                        .split_whitespace()
                        .nth(1)
                        .unwrap_or_default()
                        .to_owned();
                    let (mut length, mut kind) = (0usize, String::new());
                    loop {
                        let mut header = String::new();
                        reader.read_line(&mut header).unwrap();
                        let header = header.trim_end();
                        if header.is_empty() {
                            break;
                        }
                        let (name, value) = header.split_once(':').unwrap_or((header, ""));
                        match name.to_ascii_lowercase().as_str() {
                            "content-length" => length = value.trim().parse().unwrap(),
                            "content-type" => kind = value.trim().to_owned(),
                            _ => {}
                        }
                    }
                    let mut body = vec![0; length];
                    reader.read_exact(&mut body).unwrap();
                    store.lock().unwrap().push((path, kind, body));
                    if silent {
                        std::thread::sleep(Duration::from_secs(3600));
                    }
                    let _ = stream
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n");
                }
            });
        }
    });
    (format!("http://{address}/v1/traces"), received)
}

fn config(dir: &std::path::Path, endpoint: &str) -> String {
    config_file(
        dir,
        &format!("monitoring:\n  enable_jaeger: true\n  otlp_endpoint: \"{endpoint}\"\n"),
    )
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[test]
fn request_spans_with_the_evaluation_inside_reach_the_collector() {
    let (endpoint, received) = collector(false);
    let plugins = plugin_dir(&[&built().statistical]);
    let data = tempfile::tempdir().unwrap();
    let config = config(data.path(), &endpoint);
    let server = Server::start(plugins.path(), data.path(), &["--config", &config]);
    let csv = std::fs::read(workspace().join("examples/market.csv")).unwrap();
    let (status, done) = server.post("/api/v1/events", Some("text/csv"), &csv);
    assert_eq!((status, done["alerts"].as_u64()), (200, Some(1)), "{done}");
    assert!(server.stop().success());
    let received = received.lock().unwrap();
    assert!(!received.is_empty(), "spans were exported by the stop");
    let (path, kind, _) = &received[0];
    assert_eq!(path, "/v1/traces");
    assert_eq!(kind, "application/x-protobuf");
    let all: Vec<u8> = received.iter().flat_map(|(_, _, b)| b.clone()).collect();
    for name in [
        "request",
        "evaluate",
        "store_alerts",
        "/api/v1/events",
        "adr",
    ] {
        assert!(
            contains(&all, name),
            "a span or attribute `{name}` was exported"
        );
    }
}

#[test]
fn a_collector_that_never_answers_costs_the_requests_nothing() {
    let (endpoint, _received) = collector(true);
    let plugins = plugin_dir(&[&built().statistical]);
    let data = tempfile::tempdir().unwrap();
    let config = config(data.path(), &endpoint);
    let server = Server::start(plugins.path(), data.path(), &["--config", &config]);
    let started = Instant::now();
    for _ in 0..200 {
        let (status, _) = server.get("/api/v1/health");
        assert_eq!(status, 200);
    }
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    // The stop waits for the exporter's timeout at most, then exits.
    let stopping = Instant::now();
    assert!(server.stop().success());
    assert!(
        stopping.elapsed() < Duration::from_secs(60),
        "{:?}",
        stopping.elapsed()
    );
}

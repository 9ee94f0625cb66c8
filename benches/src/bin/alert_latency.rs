//! How long an alert takes from the event that fires it to a Redis subscriber: the
//! event is sent over `adr serve`'s WebSocket, evaluated, the alert stored, then
//! published; a subscriber on the alert channel notes when each arrives.
//!
//!     alert_latency --url http://127.0.0.1:8000 --token T --redis redis://127.0.0.1:6379/ \
//!         --channel adr:alerts --alerts 2000 --rate 500
//!
//! The service runs `benches/rules/alert_latency.adr`. Each alert is a symbol of its
//! own: 50 quiet prices first (sent in bulk, untimed), then one far off (timed). Prints
//! one JSON object: alerts heard, and the latency percentiles in milliseconds.
//! Loopback only, bounded: it gives up 10 s after the last event.

use std::collections::HashMap;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

struct Options {
    url: String,
    token: String,
    redis: String,
    channel: String,
    alerts: usize,
    rate: f64,
}

fn usage() -> ! {
    eprintln!(
        "usage: alert_latency --url URL --token T --redis redis://HOST:PORT/ [--channel C] [--alerts N] [--rate PER_S]"
    );
    std::process::exit(2)
}

fn options() -> Options {
    let mut o = Options {
        url: String::new(),
        token: String::new(),
        redis: "redis://127.0.0.1:6379/".into(),
        channel: "adr:alerts".into(),
        alerts: 2000,
        rate: 500.0,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().unwrap_or_else(|| usage());
        let number = || value.parse::<f64>().unwrap_or_else(|_| usage());
        match flag.as_str() {
            "--url" => o.url = value.trim_end_matches('/').to_owned(),
            "--token" => o.token = value,
            "--redis" => o.redis = value,
            "--channel" => o.channel = value,
            "--alerts" => o.alerts = (number() as usize).clamp(1, 100_000),
            "--rate" => o.rate = number().clamp(1.0, 1e6),
            _ => usage(),
        }
    }
    let loopback = ["http://127.0.0.1:", "http://localhost:", "http://[::1]:"];
    if !loopback.iter().any(|p| o.url.starts_with(p)) {
        eprintln!("alert_latency sends only to this machine (http://127.0.0.1:PORT)");
        std::process::exit(2);
    }
    o
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let o = options();
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let symbol = |i: usize| format!("L{run}-{i}");

    // The subscriber: (symbol, when heard).
    let client = redis::Client::open(o.redis.as_str()).unwrap_or_else(|e| {
        eprintln!("redis: {e}");
        std::process::exit(2)
    });
    let (heard, hearing) = mpsc::channel::<(String, Instant)>();
    let (ready, subscribed) = mpsc::channel();
    let channel = o.channel.clone();
    std::thread::spawn(move || {
        let mut connection = client.get_connection().expect("redis answers");
        let mut pubsub = connection.as_pubsub();
        pubsub.subscribe(&channel).expect("subscribed");
        pubsub
            .set_read_timeout(Some(Duration::from_millis(200)))
            .expect("a read timeout");
        let _ = ready.send(());
        loop {
            let Ok(message) = pubsub.get_message() else {
                continue;
            };
            let at = Instant::now();
            let text: String = message.get_payload().unwrap_or_default();
            let doc: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            let key = doc["key"].as_str().unwrap_or_default().to_owned();
            if heard.send((key, at)).is_err() {
                return;
            }
        }
    });
    subscribed.recv().expect("the subscriber starts");

    let url = format!(
        "{}/ws/anomalies?token={}",
        o.url.replacen("http", "ws", 1),
        o.token
    );
    let (mut socket, _) = tungstenite::connect(url.as_str()).unwrap_or_else(|e| {
        eprintln!("cannot connect: {e}");
        std::process::exit(2)
    });
    let mut exchange = |frame: Vec<Value>| {
        socket
            .send(tungstenite::Message::text(Value::from(frame).to_string()))
            .expect("sent");
        loop {
            match socket.read().expect("an answer") {
                tungstenite::Message::Text(t) => {
                    assert!(!t.starts_with("{\"error\""), "{t}");
                    return;
                }
                _ => continue,
            }
        }
    };
    let t0 = 1_736_900_000i64;
    // Quiet prices, untimed.
    let quiet: Vec<Value> = (0..o.alerts)
        .flat_map(|i| {
            (0..50).map(move |k| (i, k))
        })
        .map(|(i, k)| json!({"ts": t0 + k, "symbol": symbol(i), "price": 100.0 + 0.1 * ((k * 7 % 11) as f64)}))
        .collect();
    for frame in quiet.chunks(1000) {
        exchange(frame.to_vec());
    }
    // Drain what the quiet prices may have fired.
    std::thread::sleep(Duration::from_millis(300));
    while hearing.try_recv().is_ok() {}

    // One far-off price a symbol, paced.
    let mut sent: HashMap<String, Instant> = HashMap::new();
    let started = Instant::now();
    for i in 0..o.alerts {
        let due = started + Duration::from_secs_f64(i as f64 / o.rate);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        sent.insert(symbol(i), Instant::now());
        exchange(vec![
            json!({"ts": t0 + 50, "symbol": symbol(i), "price": 1000.0}),
        ]);
    }
    let achieved = o.alerts as f64 / started.elapsed().as_secs_f64();
    let mut latencies = Vec::with_capacity(o.alerts);
    let deadline = Instant::now() + Duration::from_secs(10);
    while latencies.len() < o.alerts {
        let Some(wait) = deadline.checked_duration_since(Instant::now()) else {
            break;
        };
        let Ok((key, at)) = hearing.recv_timeout(wait) else {
            break;
        };
        if let Some(then) = sent.remove(&key) {
            latencies.push(at.duration_since(then).as_secs_f64() * 1e3);
        }
    }
    latencies.sort_by(f64::total_cmp);
    let report = json!({
        "alerts_sent": o.alerts,
        "alerts_heard": latencies.len(),
        "rate_per_s": o.rate,
        // One client waits for each answer: past its round trip, the rate asked is not met.
        "achieved_per_s": achieved,
        "latency_ms": {
            "p50": percentile(&latencies, 0.50),
            "p90": percentile(&latencies, 0.90),
            "p99": percentile(&latencies, 0.99),
            "max": latencies.last().copied().unwrap_or(f64::NAN),
        },
    });
    println!("{report}");
}

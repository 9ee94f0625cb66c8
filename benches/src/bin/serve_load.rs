//! A load generator for `adr serve` and its peer (the seed's FastAPI design): WebSocket
//! clients sending frames of events and timing each answer, or HTTP clients calling
//! `predict`. Loopback only, bounded in time and count; it stops by itself.
//!
//!     serve_load ws --url http://127.0.0.1:8000 --token T --clients 4 --batch 500 \
//!         --seconds 10 --shape ohlcv
//!     serve_load predict --url http://127.0.0.1:8001 --clients 8 --seconds 10 --shape seed
//!     serve_load echo --url http://127.0.0.1:8002 --seconds 12
//!
//! `echo` is no client: a WebSocket server that answers each frame at once with an empty
//! result, thread per connection, for the generator's own ceiling on this machine (what
//! no server can beat with this generator on the same cores).
//!
//! Prints one JSON object: events (or requests) per second, and latency percentiles of
//! each frame's (request's) round trip, which is an event's time from sending to its
//! result. With `--rate`, clients pace themselves to that many events per second in all
//! (for latency at a given load); without, they send as fast as answers come.

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// What one client measured.
#[derive(Default)]
struct Tally {
    events: u64,
    frames: u64,
    errors: u64,
    latencies: Vec<f64>,
}

#[derive(Clone)]
struct Options {
    mode: String,
    url: String,
    token: Option<String>,
    clients: usize,
    batch: usize,
    seconds: f64,
    symbols: usize,
    rate: f64,
    shape: String,
    model: Option<String>,
    max_frames: u64,
    /// This run's mark in the symbols' names.
    run: u128,
}

fn usage() -> ! {
    eprintln!(
        "usage: serve_load ws|predict|echo --url URL [--token T] [--clients N] [--batch B] [--seconds S] \
         [--symbols K] [--rate EVENTS_PER_S] [--shape seed|ohlcv] [--model ID] [--max-frames N]"
    );
    std::process::exit(2)
}

fn options() -> Options {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| usage());
    if !["ws", "predict", "echo"].contains(&mode.as_str()) {
        usage();
    }
    let mut o = Options {
        mode,
        url: String::new(),
        token: None,
        clients: 4,
        batch: 100,
        seconds: 10.0,
        symbols: 10,
        rate: 0.0,
        shape: "seed".into(),
        model: None,
        max_frames: 10_000_000,
        run: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    };
    while let Some(flag) = args.next() {
        let value = args.next().unwrap_or_else(|| usage());
        let number = || value.parse::<f64>().unwrap_or_else(|_| usage());
        match flag.as_str() {
            "--url" => o.url = value.trim_end_matches('/').to_owned(),
            "--token" => o.token = Some(value),
            "--clients" => o.clients = number() as usize,
            "--batch" => o.batch = number() as usize,
            // Bounded: a run is at most ten minutes.
            "--seconds" => o.seconds = number().clamp(0.1, 600.0),
            "--symbols" => o.symbols = number() as usize,
            "--rate" => o.rate = number(),
            "--shape" => o.shape = value,
            "--model" => o.model = Some(value),
            "--max-frames" => o.max_frames = number() as u64,
            _ => usage(),
        }
    }
    let loopback = ["http://127.0.0.1:", "http://localhost:", "http://[::1]:"];
    if !loopback.iter().any(|p| o.url.starts_with(p)) {
        eprintln!("serve_load sends only to this machine (http://127.0.0.1:PORT)");
        std::process::exit(2);
    }
    o.clients = o.clients.clamp(1, 4096);
    o.batch = o.batch.clamp(1, 100_000);
    o.symbols = o.symbols.max(1);
    o
}

/// Event `i` of client `c`: each client has symbols of its own (new ones each run, so a
/// server that keeps state between runs never sees a symbol's time go back), each
/// symbol's time goes forward a second an event.
fn event(o: &Options, c: usize, i: u64) -> Value {
    let s = (i as usize) % o.symbols;
    let step = i / o.symbols as u64;
    let symbol = format!("R{}-S{c}-{s}", o.run);
    let t = 1_736_900_000 + step as i64;
    // A random walk's worth of variety without a generator: a few incommensurate waves.
    let x = step as f64;
    let price = 100.0 + (x * 0.37).sin() + 0.3 * (x * 1.71).sin() + 0.01 * (x * 0.013).cos();
    let volume = 10.0 + 3.0 * (x * 0.53).sin().abs();
    match o.shape.as_str() {
        "ohlcv" => json!({
            "ts": t, "symbol": symbol,
            "open": price, "high": price * 1.001, "low": price * 0.999, "close": price,
            "volume": volume,
        }),
        _ => json!({"symbol": symbol, "price": price, "volume": volume, "timestamp": t}),
    }
}

fn paced(o: &Options, started: Instant, sent: u64) {
    if o.rate > 0.0 {
        let due = started + Duration::from_secs_f64(sent as f64 / (o.rate / o.clients as f64));
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
}

fn ws_client(o: &Options, c: usize, deadline: Instant) -> Tally {
    let mut tally = Tally::default();
    let mut url = format!("{}/ws/anomalies", o.url.replacen("http", "ws", 1));
    if let Some(token) = &o.token {
        url.push_str(&format!("?token={token}"));
    }
    let (mut socket, _) = match tungstenite::connect(url.as_str()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("client {c}: cannot connect: {e}");
            tally.errors += 1;
            return tally;
        }
    };
    let started = Instant::now();
    let mut i = 0u64;
    while Instant::now() < deadline && tally.frames < o.max_frames {
        let frame: Vec<Value> = (0..o.batch as u64).map(|k| event(o, c, i + k)).collect();
        i += o.batch as u64;
        let text = serde_json::to_string(&frame).expect("JSON");
        let sent = Instant::now();
        if socket.send(tungstenite::Message::text(text)).is_err() {
            tally.errors += 1;
            break;
        }
        match socket.read() {
            Ok(tungstenite::Message::Text(answer)) => {
                tally.latencies.push(sent.elapsed().as_secs_f64());
                if answer.starts_with("{\"error\"") {
                    tally.errors += 1;
                    if tally.errors == 1 {
                        eprintln!("client {c}: {answer}");
                    }
                } else {
                    tally.events += o.batch as u64;
                }
                tally.frames += 1;
            }
            Ok(_) => {}
            Err(e) => {
                eprintln!("client {c}: {e}");
                tally.errors += 1;
                break;
            }
        }
        paced(o, started, i);
    }
    let _ = socket.close(None);
    tally
}

fn predict_client(o: &Options, c: usize, deadline: Instant) -> Tally {
    let mut tally = Tally::default();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let url = format!("{}/api/v1/detectors/predict", o.url);
    let started = Instant::now();
    let mut i = 0u64;
    while Instant::now() < deadline && tally.frames < o.max_frames {
        let e = event(o, c, i);
        i += 1;
        let body = match &o.model {
            // adr's: a trained model, the event's values in its columns' order.
            Some(model) => json!({"model_id": model, "values": [e["price"]]}),
            None => e,
        };
        let mut request = agent.post(&url).header("Content-Type", "application/json");
        if let Some(token) = &o.token {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        let sent = Instant::now();
        match request.send(body.to_string()) {
            Ok(mut response) => {
                let ok = response.status().is_success();
                let _ = response.body_mut().read_to_string();
                tally.latencies.push(sent.elapsed().as_secs_f64());
                tally.frames += 1;
                if ok {
                    tally.events += 1;
                } else {
                    tally.errors += 1;
                }
            }
            Err(_) => tally.errors += 1,
        }
        paced(o, started, i);
    }
    tally
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Whether something answers at `url` (so a wrong port fails fast, not after a timeout).
fn reachable(url: &str) -> bool {
    use std::net::ToSocketAddrs;
    let address = url.trim_start_matches("http://");
    address
        .to_socket_addrs()
        .ok()
        .and_then(|mut all| all.next())
        .is_some_and(|a| TcpStream::connect_timeout(&a, Duration::from_secs(2)).is_ok())
}

/// Answers every frame at once, on every connection, until `seconds` pass.
fn echo(o: &Options) {
    let address = o.url.trim_start_matches("http://");
    let listener = std::net::TcpListener::bind(address).unwrap_or_else(|e| {
        eprintln!("cannot listen on {address}: {e}");
        std::process::exit(1)
    });
    listener.set_nonblocking(true).expect("a listener");
    let deadline = Instant::now() + Duration::from_secs_f64(o.seconds);
    while Instant::now() < deadline {
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(_) => {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            }
        };
        std::thread::spawn(move || {
            let _ = stream.set_nonblocking(false);
            let _ = stream.set_nodelay(true);
            let Ok(mut socket) = tungstenite::accept(stream) else {
                return;
            };
            while let Ok(message) = socket.read() {
                if message.is_text()
                    && socket
                        .send(tungstenite::Message::text("{\"results\":[],\"alerts\":[]}"))
                        .is_err()
                {
                    return;
                }
            }
        });
    }
}

fn main() {
    let o = options();
    if o.mode == "echo" {
        echo(&o);
        return;
    }
    if !reachable(&o.url) {
        eprintln!("nothing answers at {}", o.url);
        std::process::exit(1);
    }
    let deadline = Instant::now() + Duration::from_secs_f64(o.seconds);
    let started = Instant::now();
    let tallies: Vec<Tally> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..o.clients)
            .map(|c| {
                let o = o.clone();
                scope.spawn(move || match o.mode.as_str() {
                    "ws" => ws_client(&o, c, deadline),
                    _ => predict_client(&o, c, deadline),
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let elapsed = started.elapsed().as_secs_f64();
    let mut latencies: Vec<f64> = tallies
        .iter()
        .flat_map(|t| t.latencies.iter().copied())
        .collect();
    latencies.sort_by(f64::total_cmp);
    let events: u64 = tallies.iter().map(|t| t.events).sum();
    let report = json!({
        "mode": o.mode,
        "url": o.url,
        "clients": o.clients,
        "batch": if o.mode == "ws" { o.batch } else { 1 },
        "rate_asked": o.rate,
        "seconds": elapsed,
        "events": events,
        "events_per_s": events as f64 / elapsed,
        "frames": tallies.iter().map(|t| t.frames).sum::<u64>(),
        "errors": tallies.iter().map(|t| t.errors).sum::<u64>(),
        "latency_ms": {
            "p50": percentile(&latencies, 50.0) * 1e3,
            "p99": percentile(&latencies, 99.0) * 1e3,
            "max": latencies.last().copied().unwrap_or(f64::NAN) * 1e3,
        },
    });
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{report}");
}

//! A live `adr` process fed on standard input while a test changes its world (rule files,
//! plugin folders), with its standard error read line by line.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A running `adr` reading events with `ts`, `symbol`, `close` and `volume` from standard
/// input, as CSV or JSON lines.
#[derive(Debug)]
pub struct LiveRun {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    reader: Option<JoinHandle<()>>,
    /// Every line of standard error seen so far.
    pub log: Vec<String>,
    /// Lines of `log` that a wait has looked at: the next wait starts after them.
    waited: usize,
    /// Rows written so far.
    pub rows: u64,
    t: i64,
    jsonl: bool,
}

/// How a live run ended.
#[derive(Debug)]
pub struct Ended {
    /// The exit status.
    pub status: ExitStatus,
    /// Its whole standard error.
    pub log: Vec<String>,
    /// The JSON summary (the last line of standard error, with `--json`), if any.
    pub summary: Option<serde_json::Value>,
}

impl LiveRun {
    /// Starts `adr` with `args`, fed CSV (the header row is written at once).
    pub fn start(adr: &Path, args: &[&std::ffi::OsStr]) -> Self {
        Self::spawn(adr, args, false)
    }

    /// Starts `adr` with `args`, fed JSON lines (give it `--format jsonl`).
    pub fn start_jsonl(adr: &Path, args: &[&std::ffi::OsStr]) -> Self {
        Self::spawn(adr, args, true)
    }

    fn spawn(adr: &Path, args: &[&std::ffi::OsStr], jsonl: bool) -> Self {
        let mut child = Command::new(adr)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("adr runs");
        let (tx, lines) = channel();
        let stderr = child.stderr.take().expect("stderr");
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut stdin = child.stdin.take().expect("stdin");
        if !jsonl {
            writeln!(stdin, "ts,symbol,close,volume").expect("header");
        }
        LiveRun {
            child,
            stdin: Some(stdin),
            lines,
            reader: Some(reader),
            log: Vec::new(),
            waited: 0,
            rows: 0,
            t: 1_700_000_000,
            jsonl,
        }
    }

    /// Writes `n` more rows, a minute apart, for key `BTC`.
    pub fn write_rows(&mut self, n: usize) {
        let stdin = self.stdin.as_mut().expect("the input is open");
        for i in 0..n {
            self.t += 60;
            let close = 100.0 + (i % 5) as f64 * 0.1;
            let volume = 10 + i % 3;
            let written = if self.jsonl {
                writeln!(
                    stdin,
                    r#"{{"ts": {}, "symbol": "BTC", "close": {close}, "volume": {volume}}}"#,
                    self.t
                )
            } else {
                writeln!(stdin, "{},BTC,{close},{volume}", self.t)
            };
            if let Err(e) = written {
                // The process is gone: say what it said before it went.
                std::thread::sleep(Duration::from_millis(200));
                self.log.extend(self.lines.try_iter());
                let status = self.child.try_wait();
                panic!(
                    "the process stopped reading its input ({e}; status {status:?}); it said:\n{}",
                    self.log.join("\n")
                );
            }
        }
        stdin.flush().expect("flush");
        self.rows += n as u64;
    }

    /// Waits for a line of standard error containing `text` (after the line the last wait
    /// found; lines read meanwhile by [`stream_for`](Self::stream_for) count), writing a
    /// row every 50 ms meanwhile (a reload applies at the next event: the test keeps them coming); returns
    /// the line.
    ///
    /// # Panics
    ///
    /// After 30 s without it, with everything the process said.
    pub fn wait_for(&mut self, text: &str) -> String {
        self.wait_for_while(text, |run| run.write_rows(1))
    }

    /// As [`wait_for`](Self::wait_for), running `poke` every 50 ms instead.
    pub fn wait_for_while(&mut self, text: &str, mut poke: impl FnMut(&mut Self)) -> String {
        let started = Instant::now();
        loop {
            while self.waited < self.log.len() {
                self.waited += 1;
                let line = &self.log[self.waited - 1];
                if line.contains(text) {
                    return line.clone();
                }
            }
            match self.lines.recv_timeout(Duration::from_millis(50)) {
                Ok(line) => self.log.push(line),
                Err(_) if started.elapsed() < Duration::from_secs(30) => poke(self),
                Err(e) => panic!(
                    "no `{text}` on stderr ({e}); it said:\n{}",
                    self.log.join("\n")
                ),
            }
        }
    }

    /// Lets `period` pass while writing a row every 10 ms, reading what the process says.
    pub fn stream_for(&mut self, period: Duration) {
        let started = Instant::now();
        while started.elapsed() < period {
            self.write_rows(1);
            std::thread::sleep(Duration::from_millis(10));
            self.log.extend(self.lines.try_iter());
        }
    }

    /// The process id, for signals.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The files the process has mapped (Linux: `/proc/PID/maps`), each once.
    pub fn mapped_files(&self) -> Vec<String> {
        let maps =
            std::fs::read_to_string(format!("/proc/{}/maps", self.child.id())).unwrap_or_default();
        let mut files: Vec<String> = maps
            .lines()
            .filter_map(|l| l.split_whitespace().nth(5).map(|_| l))
            .map(|l| {
                // The path is everything from the sixth field on (it may hold spaces).
                l.split_whitespace().skip(5).collect::<Vec<_>>().join(" ")
            })
            .filter(|p| p.starts_with('/'))
            .collect();
        files.sort();
        files.dedup();
        files
    }

    /// Closes the input and waits for the process to end.
    pub fn finish(mut self) -> Ended {
        drop(self.stdin.take());
        let status = self.child.wait().expect("adr ends");
        if let Some(reader) = self.reader.take() {
            reader.join().expect("stderr reader");
        }
        self.log.extend(self.lines.try_iter());
        let summary = self.log.last().and_then(|l| serde_json::from_str(l).ok());
        Ended {
            status,
            log: std::mem::take(&mut self.log),
            summary,
        }
    }
}

impl Drop for LiveRun {
    fn drop(&mut self) {
        // A failed test must not leave the process behind.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

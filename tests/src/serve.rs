//! A running `adr serve` for the integration tests: started on a free port with a
//! token of its own, stopped with SIGTERM, killed when dropped.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{built, workspace};

/// A running `adr serve`, its address and an API token for it.
#[derive(Debug)]
pub struct Server {
    /// The process.
    pub child: Child,
    /// `http://host:port`.
    pub base: String,
    /// An HTTP client that takes any status.
    pub agent: ureq::Agent,
    /// An API token the server knows.
    pub token: String,
    /// Its standard error, line by line, from after the line that said where it listens
    /// (behind a lock, so that a test's threads can share the server).
    pub stderr: std::sync::Mutex<std::sync::mpsc::Receiver<String>>,
}

/// Makes an API token in the store of `data`.
pub fn new_token(data: &Path) -> String {
    new_token_with(data, &[], &[])
}

/// Makes an API token in the store that `extra` arguments and `env` name (a
/// configuration file, PostgreSQL's variables), or else in `data`.
pub fn new_token_with(data: &Path, extra: &[&str], env: &[(&str, String)]) -> String {
    let out = Command::new(&built().adr)
        .args([
            "serve",
            "--data-dir",
            data.to_str().unwrap(),
            "--new-token",
            "tests",
        ])
        .args(extra)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .current_dir(workspace())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

impl Server {
    /// Starts `adr serve` on a free port with `extra` arguments; waits until it listens.
    pub fn start(plugins: &Path, data: &Path, extra: &[&str]) -> Server {
        Server::start_with(plugins, data, extra, &[])
    }

    /// As [`start`](Self::start), with environment variables `env` too.
    pub fn start_with(
        plugins: &Path,
        data: &Path,
        extra: &[&str],
        env: &[(&str, String)],
    ) -> Server {
        let token = new_token_with(data, extra, env);
        let mut child = serve_command(plugins, data, extra)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .current_dir(workspace())
            .env_remove("API_PORT")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("adr serve starts");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut said = Vec::new();
        let base = loop {
            let line = rx
                .recv_timeout(Duration::from_secs(60))
                .unwrap_or_else(|e| panic!("adr serve did not listen ({e}): {said:#?}"));
            // A text line, or a JSON one whose message says it.
            if let Some((_, at)) = line.split_once("listening on ") {
                let url = at
                    .split(|c: char| c.is_whitespace() || c == '"' || c == ',')
                    .next()
                    .unwrap();
                break url.trim_end_matches("/api/v1").to_owned();
            }
            said.push(line);
        };
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        Server {
            child,
            base,
            agent,
            token,
            stderr: std::sync::Mutex::new(rx),
        }
    }

    /// The `Authorization` header's value.
    pub fn bearer(&self) -> String {
        format!("Bearer {}", self.token)
    }

    /// GET; the status and the body (JSON, or the text as a string).
    pub fn get(&self, path: &str) -> (u16, serde_json::Value) {
        as_json(self.call("GET", path, None, None))
    }

    /// GET; the body as text.
    pub fn text(&self, path: &str) -> String {
        self.call("GET", path, None, None).1
    }

    /// POST; the status and the body.
    pub fn post(
        &self,
        path: &str,
        content_type: Option<&str>,
        body: &[u8],
    ) -> (u16, serde_json::Value) {
        as_json(self.call("POST", path, content_type, Some(body)))
    }

    /// Any method, with a content type and a body when given, and the token; the status
    /// and the body's text.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: Option<&[u8]>,
    ) -> (u16, String) {
        let mut request = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("Authorization", self.bearer());
        if let Some(ct) = content_type {
            request = request.header("Content-Type", ct);
        }
        let request = request
            .body(body.map(<[u8]>::to_vec).unwrap_or_default())
            .unwrap();
        let mut response = self.agent.run(request).unwrap();
        let status = response.status().as_u16();
        (status, response.body_mut().read_to_string().unwrap())
    }

    /// SIGTERM, and the exit status.
    pub fn stop(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success());
        self.child.wait().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// POSTs `body` as JSON.
    pub fn post_json(&self, path: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
        self.post(path, Some("application/json"), body.to_string().as_bytes())
    }

    /// DELETE; the status.
    pub fn delete(&self, path: &str) -> u16 {
        self.call("DELETE", path, None, None).0
    }

    /// Any method, with an optional body; the status and the body (JSON, or the text as
    /// a string).
    pub fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
    ) -> (u16, serde_json::Value) {
        as_json(self.call(method, path, None, body))
    }
}

/// A body as JSON, or its text as a JSON string when it is no JSON.
fn as_json((status, text): (u16, String)) -> (u16, serde_json::Value) {
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
    )
}

/// Writes `yaml` as `config.yaml` in `dir`; its path, as `--config` takes it.
pub fn config_file(dir: &Path, yaml: &str) -> String {
    let path = dir.join("config.yaml");
    std::fs::write(&path, yaml).expect("the configuration is written");
    path.to_str().expect("a UTF-8 path").to_owned()
}

/// `adr serve` on a free port with plugins from `plugins`, its store in `data` and `extra`
/// arguments, run in the workspace.
fn serve_command(plugins: &Path, data: &Path, extra: &[&str]) -> Command {
    let mut command = Command::new(&built().adr);
    command
        .args([
            "--plugins",
            plugins.to_str().unwrap(),
            "serve",
            "--port",
            "0",
        ])
        .args(["--data-dir", data.to_str().unwrap()])
        .args(extra)
        .current_dir(workspace());
    command
}

/// Runs `adr serve` (plugins from `plugins`, store in `data`, `extra` arguments) expecting
/// it not to start; its standard error.
pub fn refused_start(plugins: &Path, data: &Path, extra: &[&str]) -> String {
    let out = serve_command(plugins, data, extra)
        .stdin(Stdio::null())
        .output()
        .expect("adr serve runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "adr serve started: {stderr}");
    stderr
}

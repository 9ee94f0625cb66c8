//! Helpers for the workspace integration tests: build the plugins and the `adr` binary
//! once, give each test a plugin folder of its own, and find the shared real data.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

pub mod live;
pub mod serve;
pub mod services;

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target"))
}

fn cargo() -> Command {
    let mut c = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    c.current_dir(workspace());
    c
}

fn run_build(mut command: Command, what: &str) {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run cargo to build {what}: {e}"));
    assert!(
        out.status.success(),
        "building {what} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The built artifacts the tests use.
#[derive(Debug)]
pub struct Built {
    /// The `adr` binary.
    pub adr: PathBuf,
    /// The statistical plugin.
    pub statistical: PathBuf,
    /// The machine-learning plugin.
    pub ml: PathBuf,
    /// The realtime plugin.
    pub realtime: PathBuf,
    /// The plugin whose detector panics.
    pub faulty: PathBuf,
    /// A dynamic library that is not a plugin.
    pub not_a_plugin: PathBuf,
    /// A plugin built against a bumped SDK ABI version.
    pub future_sdk: PathBuf,
}

fn library(dir: &Path, crate_name: &str) -> PathBuf {
    let file = format!(
        "{}{}{}",
        std::env::consts::DLL_PREFIX,
        crate_name,
        std::env::consts::DLL_SUFFIX
    );
    dir.join(file)
}

/// Builds (once per test binary) the `adr` binary and the plugins, in the dev profile.
pub fn built() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| {
        let mut main = cargo();
        main.args(["build", "--quiet", "-p", "adr-cli"]);
        main.args([
            "-p",
            "adr-plugin-statistical",
            "-p",
            "adr-plugin-ml",
            "-p",
            "adr-plugin-realtime",
            "-p",
            "adr-test-plugin-faulty",
            "-p",
            "adr-test-not-a-plugin",
        ]);
        run_build(main, "the adr binary and the plugins");
        // Its own workspace (the bumped ABI must not reach the others), same target folder.
        let mut future = cargo();
        future.args([
            "build",
            "--quiet",
            "--manifest-path",
            "tests/plugins/future-sdk/Cargo.toml",
            "--target-dir",
        ]);
        future.arg(target_dir());
        run_build(future, "the future-SDK test plugin");
        let debug = target_dir().join("debug");
        Built {
            adr: debug.join(format!("adr{}", std::env::consts::EXE_SUFFIX)),
            statistical: library(&debug, "adr_plugin_statistical"),
            ml: library(&debug, "adr_plugin_ml"),
            realtime: library(&debug, "adr_plugin_realtime"),
            faulty: library(&debug, "adr_test_plugin_faulty"),
            not_a_plugin: library(&debug, "adr_test_not_a_plugin"),
            future_sdk: library(&debug, "adr_test_plugin_future_sdk"),
        }
    })
}

/// Builds the engine's example `name` (dev profile) and returns its binary.
pub fn example(name: &str) -> PathBuf {
    let mut command = cargo();
    command.args(["build", "--quiet", "-p", "adr-engine", "--example", name]);
    run_build(command, &format!("the example {name}"));
    target_dir()
        .join("debug/examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
}

/// Builds the versioned test plugin (`tests/plugins/versioned`) with package version
/// `version` and returns a copy of the library named `name` in `dir`. Each build replaces
/// the last in the target folder, hence the copy.
pub fn build_versioned_plugin(version: &str, dir: &Path, name: &str) -> PathBuf {
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let source = workspace().join("tests/plugins/versioned");
    let build = tempfile::tempdir().expect("temp dir");
    let manifest = std::fs::read_to_string(source.join("Cargo.toml"))
        .expect("manifest")
        .replace("version = \"1.0.0\"", &format!("version = \"{version}\""))
        .replace(
            "path = \"../../../sdk\"",
            &format!("path = {:?}", workspace().join("sdk")),
        );
    std::fs::write(build.path().join("Cargo.toml"), manifest).expect("write manifest");
    std::fs::copy(source.join("Cargo.lock"), build.path().join("Cargo.lock")).expect("lock");
    std::fs::create_dir_all(build.path().join("src")).expect("src");
    std::fs::copy(source.join("src/lib.rs"), build.path().join("src/lib.rs")).expect("source");
    let mut command = cargo();
    command
        .args(["build", "--quiet", "--manifest-path"])
        .arg(build.path().join("Cargo.toml"))
        .arg("--target-dir")
        .arg(target_dir());
    run_build(command, &format!("the versioned test plugin {version}"));
    let out = dir.join(name);
    std::fs::copy(
        library(&target_dir().join("debug"), "adr_test_plugin_versioned"),
        &out,
    )
    .expect("copy the build");
    out
}

/// A temporary plugin folder holding copies of `plugins` (each test gets its own, so
/// folders can hold broken files without disturbing other tests).
pub fn plugin_dir(plugins: &[&Path]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for p in plugins {
        std::fs::copy(p, dir.path().join(p.file_name().expect("file name"))).expect("copy plugin");
    }
    dir
}

/// Says that a test is skipped, on the real stderr: the test harness captures `eprintln!`
/// of passing tests, and a skip must stay visible.
pub fn skip(why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED {why}");
}

/// `../shared/data`, or `None` (with a visible note) where it is absent, as on a user's
/// clone. With `ADR_REQUIRE_SHARED_DATA=1` (set by CI) its absence fails the test instead.
pub fn shared_data(test: &str) -> Option<PathBuf> {
    let dir = workspace().join("../shared/data");
    if dir.is_dir() {
        return Some(dir);
    }
    let required = std::env::var("ADR_REQUIRE_SHARED_DATA").is_ok_and(|v| v == "1");
    assert!(
        !required,
        "{test}: ../shared/data is missing and ADR_REQUIRE_SHARED_DATA=1"
    );
    skip(&format!("{test}: needs ../shared/data (real labelled data beside the repository), which is not here"));
    None
}

/// What a run of `adr` did.
#[derive(Debug)]
pub struct Run {
    /// Exit code (-1 when killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// Runs the built `adr` with `args` in the workspace, with the statistical, realtime and
/// faulty plugins, feeding `stdin` if given.
pub fn adr(args: &[&str], stdin: Option<&str>) -> Run {
    use std::io::Write;
    use std::process::{Command, Output, Stdio};
    let b = built();
    let dir = plugin_dir(&[&b.statistical, &b.realtime, &b.faulty]);
    let mut cmd = Command::new(&b.adr);
    cmd.args(args)
        .arg("--plugins")
        .arg(dir.path())
        .current_dir(workspace());
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("adr runs");
    if let Some(text) = stdin {
        let written = child
            .stdin
            .take()
            .expect("stdin")
            .write_all(text.as_bytes());
        // a command that fails before reading its input (a bad flag) closes the pipe
        // first; its exit code and output say what happened
        if let Err(e) = written {
            assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "write stdin: {e}");
        }
    }
    drop(child.stdin.take());
    let Output {
        status,
        stdout,
        stderr,
    } = child.wait_with_output().expect("adr finishes");
    Run {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

/// The Python with `tests/reference/requirements.txt` installed (`ADR_REFERENCE_PYTHON`),
/// or `None` with a visible note; under `ADR_REQUIRE_SHARED_DATA=1` its absence fails.
pub fn reference_python(test: &str) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("ADR_REFERENCE_PYTHON") {
        return Some(PathBuf::from(p));
    }
    let required = std::env::var("ADR_REQUIRE_SHARED_DATA").is_ok_and(|v| v == "1");
    assert!(
        !required,
        "{test}: ADR_REFERENCE_PYTHON is not set (a Python with tests/reference/requirements.txt)"
    );
    skip(&format!(
        "{test}: set ADR_REFERENCE_PYTHON to a Python with tests/reference/requirements.txt"
    ));
    None
}

/// Runs `python` with `args` in the workspace and parses the JSON it prints.
///
/// # Panics
///
/// If the script fails or prints no JSON (its standard error is in the message).
pub fn python_json<S: AsRef<std::ffi::OsStr>>(python: &Path, args: &[S]) -> serde_json::Value {
    let out = std::process::Command::new(python)
        .args(args)
        .current_dir(workspace())
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "{:?} failed:\n{}",
        args.iter()
            .map(|a| a.as_ref().to_owned())
            .collect::<Vec<_>>(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON from the script")
}

/// Seeded series of the shapes that break detectors at the edges, for differential tests
/// against the reference implementations (issue 20): Gaussian noise at ordinary scale, at
/// 1e100 and at 1e-140 (smaller, and numpy's own variance underflows), integer ties,
/// constant runs between noise, a ramp, and Cauchy tails. Each is `n` points; the name
/// says which.
pub fn hostile_series(n: usize, seed: u64) -> Vec<(&'static str, Vec<f64>)> {
    let mut state = seed;
    let mut uniform = move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (((z ^ (z >> 31)) >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    };
    let mut gauss = move || {
        let (u, v) = (uniform(), uniform());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    };
    let noise: Vec<f64> = (0..n).map(|_| gauss()).collect();
    // the ratio of two independent normals
    let cauchy: Vec<f64> = (0..n).map(|_| gauss() / gauss()).collect();
    vec![
        ("gaussian", noise.clone()),
        (
            "gaussian at 1e100",
            noise.iter().map(|x| x * 1e100).collect(),
        ),
        (
            "gaussian at 1e-140",
            noise.iter().map(|x| x * 1e-140).collect(),
        ),
        (
            "integer ties",
            noise.iter().map(|x| (x * 2.0).round()).collect(),
        ),
        (
            "constant runs",
            noise
                .iter()
                .enumerate()
                .map(|(i, x)| if (i / 150) % 2 == 1 { 3.0 } else { 3.0 + x })
                .collect(),
        ),
        ("ramp", (0..n).map(|i| i as f64 * 0.5).collect()),
        ("cauchy tails", cauchy),
    ]
}

/// Writes `values` as a CSV with `timestamp` (seconds from 0) and `value` columns, each
/// number in its shortest exact form; returns the path.
pub fn write_series(dir: &Path, name: &str, values: &[f64]) -> PathBuf {
    let file = name.replace(' ', "_") + ".csv";
    let mut text = String::from("timestamp,value\n");
    for (i, x) in values.iter().enumerate() {
        text.push_str(&format!("{i},{x:?}\n"));
    }
    let path = dir.join(file);
    std::fs::write(&path, text).expect("write the series");
    path
}

//! Shared pieces of adr's benchmarks: the inputs (the peer harness's dumped files, checked
//! against their sha256, or the same shapes generated here), the statistical plugin loaded
//! through the real loader, and a median-of-repeats timer that matches the peer harness.

use std::path::{Path, PathBuf};
use std::time::Instant;

use adr_engine::plugins::{Registry, SearchPath};
use adr_sdk::{host::DetectorHandle, ParamValue};
use sha2::{Digest, Sha256};

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("benches/ has a parent")
        .to_path_buf()
}

/// Seeded uniform numbers in `[0, 1)` (splitmix64), for inputs generated without the peers'.
fn uniform(seed: u64) -> impl FnMut() -> f64 {
    let mut state = seed;
    move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A series of `n` points: `series_<n>.f64` from `$ADR_PEER_INPUTS` (the folder that
/// `../shared/tools/peers/bench.py dump` writes), checked against its manifest; without
/// that folder, a seeded series of the same shape (random walk + sine + noise + spikes).
/// The second value names the source.
pub fn series(n: usize) -> (Vec<f64>, String) {
    if let Some(found) = peer_input(&format!("series_{n}")) {
        return found;
    }
    let mut uniform = uniform(7u64.wrapping_add(n as u64));
    let mut walk = 0.0;
    let values = (0..n)
        .map(|t| {
            walk += 0.02 * (uniform() - 0.5) * 3.46;
            let spike = if uniform() < 0.001 { 6.0 } else { 0.0 };
            walk + 2.0 * (std::f64::consts::TAU * t as f64 / 60.0).sin()
                + 0.5 * (uniform() - 0.5) * 3.46
                + spike
        })
        .collect();
    (
        values,
        format!("series_{n} (generated here; set ADR_PEER_INPUTS for the peers' exact input)"),
    )
}

/// The peer harness's dumped input `name` from `$ADR_PEER_INPUTS`, checked against its
/// manifest's sha256, with a description of where it came from; `None` without that folder.
///
/// # Panics
///
/// A folder without the file or a file whose sha256 differs.
pub fn peer_input(name: &str) -> Option<(Vec<f64>, String)> {
    let dir = PathBuf::from(std::env::var_os("ADR_PEER_INPUTS")?);
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.join("manifest.json")).expect("manifest.json in ADR_PEER_INPUTS"),
    )
    .expect("manifest JSON");
    let meta = &manifest["inputs"][name];
    let file = meta["file"]
        .as_str()
        .unwrap_or_else(|| panic!("{name} is not in the manifest"));
    let bytes = std::fs::read(dir.join(file)).expect("peer input file");
    let digest = format!("{:x}", Sha256::digest(&bytes));
    assert_eq!(
        digest,
        meta["sha256"].as_str().unwrap(),
        "{name}: sha256 differs from the manifest"
    );
    let values = bytes
        .chunks_exact(8)
        .map(|b| f64::from_le_bytes(b.try_into().unwrap()))
        .collect();
    Some((
        values,
        format!("{name} (peer dump, sha256 {})", &digest[..16]),
    ))
}

/// `n` rows of 8 values, row-major: `blobs_<n>.f64` from `$ADR_PEER_INPUTS` (three
/// Gaussian clusters and 1 % uniform outliers); without it, seeded rows of that shape.
pub fn blobs(n: usize) -> (Vec<f64>, String) {
    if let Some(found) = peer_input(&format!("blobs_{n}")) {
        return found;
    }
    let mut uniform = uniform(42u64.wrapping_add(n as u64));
    let mut values = Vec::with_capacity(n * 8);
    for i in 0..n {
        let outlier = i % 100 == 99;
        let centre = (i % 3) as f64 * 4.0 - 4.0;
        for _ in 0..8 {
            // A sum of 4 uniforms: roughly normal, variance 1/3.
            let x = if outlier {
                uniform() * 20.0 - 10.0
            } else {
                centre + (0..4).map(|_| uniform() - 0.5).sum::<f64>() * 1.73
            };
            values.push(x);
        }
    }
    (
        values,
        format!("blobs_{n} (generated here; set ADR_PEER_INPUTS for the peers' exact input)"),
    )
}

/// The release builds of the plugins under `target/release`, loaded through the real
/// loader.
///
/// # Panics
///
/// If the ML plugin has not been built: `cargo build --release -p adr-plugin-ml`.
pub fn release_plugins() -> Registry {
    release_registry("ml.isolation_forest", "adr-plugin-ml")
}

/// The release build of the statistical plugin, loaded through the real loader.
///
/// # Panics
///
/// If it has not been built: `cargo build --release -p adr-plugin-statistical`.
pub fn statistical_plugin() -> Registry {
    release_registry("statistical.zscore", "adr-plugin-statistical")
}

/// The release builds of the realtime and statistical plugins, loaded through the real loader.
///
/// # Panics
///
/// If the realtime plugin has not been built: `cargo build --release -p adr-plugin-realtime`.
pub fn realtime_plugin() -> Registry {
    release_registry("realtime.bocpd", "adr-plugin-realtime")
}

/// The plugins under `target/release` (or `$CARGO_TARGET_DIR/release`), which must
/// include `detector` from `package`.
fn release_registry(detector: &str, package: &str) -> Registry {
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target"));
    let registry =
        Registry::load(&SearchPath::explicit([dir.join("release")])).expect("plugins load");
    assert!(
        registry.find(detector).is_ok(),
        "build the plugin first: cargo build --release -p {package}"
    );
    registry
}

/// A statistical detector with a count window, through the plugin boundary.
pub fn detector(registry: &Registry, name: &str, window: i64) -> DetectorHandle {
    let params = vec![("window".to_owned(), ParamValue::Int(window))];
    registry
        .create(&format!("statistical.{name}"), &params, &["x".to_owned()])
        .expect("detector builds")
}

/// Median seconds of `f` over at least 3 runs (up to 15, about 2 s in all) after one
/// untimed warm-up run: the peer harness's method.
pub fn median_seconds(mut f: impl FnMut()) -> (f64, usize) {
    f();
    let mut times = Vec::new();
    let started = Instant::now();
    while times.len() < 3 || (times.len() < 15 && started.elapsed().as_secs_f64() < 2.0) {
        let t = Instant::now();
        f();
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    (times[times.len() / 2], times.len())
}

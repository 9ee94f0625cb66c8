//! The plugin loader and registry, through real dynamic libraries.

use adr_engine::plugins::{Registry, RegistryError, SearchPath};
use adr_sdk::{score::ScoreColumns, Column, ErrorKind, Event, Frame, ParamValue};
use adr_tests::{built, plugin_dir};

fn registry(dir: &tempfile::TempDir) -> Registry {
    Registry::load(&SearchPath::explicit([dir.path().to_path_buf()])).expect("registry loads")
}

fn score(
    handle: &mut adr_sdk::host::DetectorHandle,
    values: &[f64],
) -> Result<ScoreColumns, adr_sdk::DetectorError> {
    let ts: Vec<i64> = (0..values.len() as i64).collect();
    let cols = [Column::f64("x", values)];
    let frame = Frame::new(&ts, &cols).unwrap();
    let mut out = ScoreColumns::with_len(values.len());
    handle.score(&frame, &mut out.as_mut())?;
    Ok(out)
}

fn series(n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| ((i * 7919) % 101) as f64 + if i % 97 == 0 { 400.0 } else { 0.0 })
        .collect()
}

#[test]
fn the_statistical_plugin_loads_and_scores_exactly_like_its_rlib() {
    let dir = plugin_dir(&[&built().statistical]);
    let reg = registry(&dir);
    assert!(reg.skipped().is_empty(), "{:?}", reg.skipped());
    let plugin = &reg.plugins()[0];
    assert_eq!(plugin.plugin.family(), "statistical");
    let names: Vec<&str> = plugin.detectors.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(
        names,
        ["zscore", "mad", "iqr", "tukey", "grubbs", "esd", "dixon_q"]
    );

    let values = series(2_000);
    let ts: Vec<i64> = (0..values.len() as i64).collect();
    for (name, params) in [
        ("zscore", vec![("window", ParamValue::Int(100))]),
        ("mad", vec![("window", ParamValue::Int(100))]),
        ("tukey", vec![("window", ParamValue::Text("batch".into()))]),
        ("grubbs", vec![("window", ParamValue::Int(50))]),
    ] {
        let params: Vec<(String, ParamValue)> =
            params.into_iter().map(|(n, v)| (n.to_owned(), v)).collect();
        let mut handle = reg
            .create(&format!("statistical.{name}"), &params, &["x".into()])
            .unwrap();
        let via_ffi = score(&mut handle, &values).unwrap();

        let direct = adr_plugin_statistical::__adr_plugin_module();
        let mut local = adr_sdk::host::Plugin::from_module(direct)
            .create(name, &params, &["x".into()])
            .unwrap();
        let cols = [Column::f64("x", &values)];
        let frame = Frame::new(&ts, &cols).unwrap();
        let mut want = ScoreColumns::with_len(values.len());
        local.score(&frame, &mut want.as_mut()).unwrap();
        assert_eq!(format!("{via_ffi:?}"), format!("{want:?}"), "{name}");
        assert!(
            via_ffi.verdict.contains(&adr_sdk::Verdict::Anomaly),
            "{name} finds the injected spikes"
        );
    }
}

#[test]
fn broken_files_are_skipped_with_one_line_each_and_the_rest_load() {
    let b = built();
    let dir = plugin_dir(&[&b.statistical, &b.not_a_plugin, &b.future_sdk]);
    let ext = std::env::consts::DLL_EXTENSION;
    std::fs::write(
        dir.path().join(format!("libgarbage.{ext}")),
        b"this is not a library at all",
    )
    .unwrap();
    let bytes = std::fs::read(&b.statistical).unwrap();
    std::fs::write(
        dir.path().join(format!("libtruncated.{ext}")),
        &bytes[..bytes.len() / 3],
    )
    .unwrap();

    let reg = registry(&dir);
    assert_eq!(reg.plugins().len(), 1, "the statistical plugin still loads");
    let skipped: Vec<String> = reg.skipped().iter().map(|e| e.to_string()).collect();
    assert_eq!(skipped.len(), 4, "{skipped:#?}");
    let line = |file: &str| {
        skipped
            .iter()
            .find(|s| s.contains(file))
            .unwrap_or_else(|| panic!("{file} not reported: {skipped:#?}"))
    };
    assert!(
        line("libgarbage").contains("not a loadable library"),
        "{}",
        line("libgarbage")
    );
    assert!(
        line("libtruncated").contains("not a loadable library"),
        "{}",
        line("libtruncated")
    );
    assert!(
        line("not_a_plugin").contains("not an adr plugin"),
        "{}",
        line("not_a_plugin")
    );
    assert!(
        line("future_sdk").contains("built against adr-sdk ABI 0.4.0, this engine needs ABI 0.3.0"),
        "{}",
        line("future_sdk")
    );
    for s in &skipped {
        assert!(!s.contains('\n') && s.len() < 400, "one short line: {s}");
    }
}

#[test]
fn two_plugins_exporting_one_detector_is_an_error_naming_both_files() {
    let b = built();
    let dir = plugin_dir(&[&b.statistical]);
    let copy = dir.path().join(format!(
        "libadr_plugin_statistical_copy.{}",
        std::env::consts::DLL_EXTENSION
    ));
    std::fs::copy(&b.statistical, &copy).unwrap();
    let err = Registry::load(&SearchPath::explicit([dir.path().to_path_buf()])).unwrap_err();
    let RegistryError::Duplicate { name, .. } = &err else {
        panic!("{err}")
    };
    assert_eq!(name, "statistical.zscore");
    let text = err.to_string();
    assert!(
        text.contains("libadr_plugin_statistical.")
            && text.contains("libadr_plugin_statistical_copy."),
        "{text}"
    );
}

#[test]
fn a_panicking_detector_is_an_error_and_the_engine_goes_on() {
    let b = built();
    let dir = plugin_dir(&[&b.statistical, &b.faulty]);
    let reg = registry(&dir);
    let params = vec![("after".to_owned(), ParamValue::Int(2))];
    let mut d = reg.create("faulty.panics", &params, &["x".into()]).unwrap();
    let err = score(&mut d, &[1.0; 5]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Panicked);
    assert!(
        err.message().contains("deliberate panic after 2 points"),
        "{err}"
    );
    let again = d.update(&Event::new(0, &[1.0])).unwrap_err();
    assert_eq!(again.kind(), ErrorKind::Panicked);
    assert!(again.message().contains("must be reset"), "{again}");
    d.reset().unwrap();
    assert!(
        d.update(&Event::new(0, &[1.0])).is_ok(),
        "a reset detector works again"
    );
    // other detectors are unaffected
    let mut z = reg
        .create("statistical.zscore", &[], &["x".into()])
        .unwrap();
    assert!(score(&mut z, &series(600)).is_ok());
}

#[test]
fn invalid_params_and_names_are_explained() {
    let dir = plugin_dir(&[&built().statistical]);
    let reg = registry(&dir);
    let p = |n: &str, v: ParamValue| vec![(n.to_owned(), v)];
    let x = ["x".to_owned()];
    type Case<'a> = (
        &'a str,
        Vec<(String, ParamValue)>,
        &'a [String],
        ErrorKind,
        &'a str,
    );
    let cases: [Case<'_>; 6] = [
        (
            "unknown param",
            p("windw", ParamValue::Int(5)),
            &x,
            ErrorKind::InvalidParams,
            "unknown parameter `windw` (did you mean `window`?)",
        ),
        (
            "wrong type",
            p("threshold", ParamValue::Text("high".into())),
            &x,
            ErrorKind::InvalidParams,
            "parameter `threshold` expects a number, got the text `high`",
        ),
        (
            "out of range",
            p("window", ParamValue::Int(1)),
            &x,
            ErrorKind::InvalidParams,
            "parameter `window` must be >= 2 and <= 10000000, got 1",
        ),
        (
            "bad choice",
            p("side", ParamValue::Text("up".into())),
            &x,
            ErrorKind::InvalidParams,
            "parameter `side` must be one of both, upper, lower, got `up`",
        ),
        (
            "two inputs",
            vec![],
            &["a".to_owned(), "b".to_owned()],
            ErrorKind::InvalidInput,
            "detector `zscore` takes 1 column, got 2",
        ),
        (
            "unknown detector",
            vec![],
            &x,
            ErrorKind::UnknownDetector,
            "family `statistical` has no detector `zscroe` (did you mean `zscore`?)",
        ),
    ];
    for (case, params, inputs, kind, want) in cases {
        let name = if case == "unknown detector" {
            "statistical.zscroe"
        } else {
            "statistical.zscore"
        };
        let err = reg.create(name, &params, inputs).unwrap_err();
        assert_eq!(err.kind(), kind, "{case}: {err}");
        assert!(err.message().contains(want), "{case}: {err}");
    }
}

#[test]
fn state_survives_a_save_and_restore_into_a_new_instance() {
    let dir = plugin_dir(&[&built().statistical]);
    let reg = registry(&dir);
    let values = series(300);
    for name in ["zscore", "mad", "iqr", "tukey", "grubbs", "esd", "dixon_q"] {
        let q = format!("statistical.{name}");
        let params = vec![("window".to_owned(), ParamValue::Int(25))];
        let mut a = reg.create(&q, &params, &["x".into()]).unwrap();
        score(&mut a, &values[..200]).unwrap();
        let state = a
            .save()
            .unwrap()
            .expect("rolling detectors save their window");
        let mut b = reg.create(&q, &params, &["x".into()]).unwrap();
        b.restore(&state).unwrap();
        let (ra, rb) = (
            score(&mut a, &values[200..]).unwrap(),
            score(&mut b, &values[200..]).unwrap(),
        );
        assert_eq!(format!("{ra:?}"), format!("{rb:?}"), "{name}");
    }
    let z = reg
        .create("statistical.zscore", &[], &["x".into()])
        .unwrap();
    let state = z.save().unwrap().unwrap();
    let mut m = reg.create("statistical.mad", &[], &["x".into()]).unwrap();
    let err = m.restore(&state).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::IncompatibleState);
    assert!(
        err.message()
            .contains("saved by detector `zscore`, not `mad`"),
        "{err}"
    );
}

#[test]
fn an_empty_or_missing_plugin_folder_loads_nothing_and_lookups_say_so() {
    let empty = tempfile::tempdir().unwrap();
    let reg = Registry::load(&SearchPath::explicit([
        empty.path().to_path_buf(),
        "/nonexistent/adr".into(),
    ]))
    .unwrap();
    let err = reg.find("statistical.zscore").unwrap_err().to_string();
    assert!(
        err.contains("no plugin is loaded (see --plugins and ADR_PLUGIN_PATH)"),
        "{err}"
    );
}

//! A plugin folder named twice, or reached through a link, is one folder: its plugins load
//! once (issue 21: it used to fail every command with "exported by two plugins").

use std::process::Command;

use adr_tests::{built, plugin_dir, workspace};

#[test]
fn a_folder_named_twice_loads_its_plugins_once() {
    let dir = plugin_dir(&[&built().statistical]);
    let link = tempfile::tempdir().unwrap();
    let alias = link.path().join("alias");
    std::os::unix::fs::symlink(dir.path(), &alias).unwrap();
    let same = dir.path().display().to_string();
    let dotted = format!("{same}/.");
    for (name, args) in [
        (
            "--plugins twice",
            vec!["--plugins", &same, "--plugins", &same],
        ),
        ("with a dot", vec!["--plugins", &same, "--plugins", &dotted]),
        (
            "and a link",
            vec!["--plugins", &same, "--plugins", alias.to_str().unwrap()],
        ),
    ] {
        let out = Command::new(&built().adr)
            .args(&args)
            .args(["plugins", "--json"])
            .current_dir(workspace())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{name}: {stderr}");
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(doc["plugins"].as_array().unwrap().len(), 1, "{name}: {doc}");
    }
    let env = Command::new(&built().adr)
        .env("ADR_PLUGIN_PATH", format!("{same}:{same}/"))
        .args(["plugins", "--json"])
        .output()
        .unwrap();
    assert!(
        env.status.success(),
        "{}",
        String::from_utf8_lossy(&env.stderr)
    );
}

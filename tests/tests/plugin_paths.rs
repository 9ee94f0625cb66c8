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

fn plugins_command(args: &[&str], env: Option<&str>) -> (i32, String, String) {
    let mut command = Command::new(&built().adr);
    command.args(args).arg("plugins").current_dir(workspace());
    command.env_remove("ADR_PLUGIN_PATH");
    if let Some(value) = env {
        command.env("ADR_PLUGIN_PATH", value);
    }
    let out = command.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn each_place_that_gives_no_plugin_is_named_with_why() {
    let file = tempfile::NamedTempFile::new().unwrap();
    let file = file.path().to_str().unwrap().to_owned();
    for (name, args, env, said) in [
        (
            "a missing folder",
            vec!["--plugins", "/nonexistent"],
            None,
            "folder /nonexistent: no such folder".to_owned(),
        ),
        (
            "a plain file",
            vec!["--plugins", file.as_str()],
            None,
            format!("folder {file}: not a folder"),
        ),
        (
            "separators only",
            vec![],
            Some("::"),
            "folder \"\": an empty folder name".to_owned(),
        ),
    ] {
        let (code, stdout, stderr) = plugins_command(&args, env);
        assert_eq!(
            code, 1,
            "{name}: finding no plugin is a failure\n{stdout}{stderr}"
        );
        assert!(stderr.contains(&said), "{name}: {stderr}");
        assert!(stdout.contains("no plugins found in "), "{name}: {stdout}");
        assert!(!stdout.contains(", ,"), "{name}: {stdout}");
    }

    // Beside a plugin that loads, each file that does not is warned about, the same way.
    let dir = plugin_dir(&[&built().statistical]);
    std::fs::write(dir.path().join("libempty.so"), b"").unwrap();
    std::fs::create_dir(dir.path().join("libfolder.so")).unwrap();
    std::os::unix::fs::symlink(dir.path().join("libloop.so"), dir.path().join("libloop.so"))
        .unwrap();
    let (code, stdout, stderr) =
        plugins_command(&["--plugins", dir.path().to_str().unwrap()], None);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("statistical"), "{stdout}");
    for (name, why) in [
        ("libempty.so", "not a loadable library"),
        ("libfolder.so", "not a library file: a folder"),
        (
            "libloop.so",
            "not a library file: a link that leads nowhere",
        ),
    ] {
        assert!(
            stderr
                .lines()
                .any(|l| l.contains("skipped plugin") && l.contains(name) && l.contains(why)),
            "{name}: {stderr}"
        );
    }
}

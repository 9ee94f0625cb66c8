//! Refusing an output that would overwrite an input or another output.
//!
//! Opening an output truncates it before a single input byte is read, so
//! `--input same.csv --output same.csv` would empty the data it was asked to score, and two
//! outputs on one file interleave or lose rows. Names cannot tell: `a.csv`, `./a.csv`, a
//! symbolic or hard link to it are one file. Files are compared by identity (device and
//! inode) where they exist, and by their canonical folder and name where an output is not
//! yet created.

use std::path::Path;

use adr_plugin_host::FileIdentity;

/// A file that an output would overwrite.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OverlapError {
    /// An output is the same file as an input.
    #[error("{output_role} {output} is the same file as {input_role} {input}: writing it would destroy what is read; choose another path")]
    OutputIsInput {
        /// What the output is (`--output`).
        output_role: String,
        /// The output's path as given.
        output: String,
        /// What the input is (`--input`, `rule file`).
        input_role: String,
        /// The input's path as given.
        input: String,
    },
    /// Two outputs are the same file.
    #[error("{first_role} and {second_role} are the same file ({first}, {second}): each would overwrite the other; choose two paths")]
    OutputsShareAFile {
        /// What the first output is.
        first_role: String,
        /// Its path as given.
        first: String,
        /// What the second output is.
        second_role: String,
        /// Its path as given.
        second: String,
    },
}

/// One file named on a command line, with what it is for (`--input`, `--alerts`).
#[derive(Debug, Clone, Copy)]
pub struct NamedPath<'a> {
    /// What it is, as the message names it.
    pub role: &'a str,
    /// The path as given.
    pub path: &'a Path,
}

impl<'a> NamedPath<'a> {
    /// A file named `path`, for `role`.
    pub fn new(role: &'a str, path: &'a Path) -> Self {
        NamedPath { role, path }
    }
}

/// Checks that no output is an input or another output. Standard input and output (`-`)
/// are never files.
///
/// # Errors
///
/// [`OverlapError`] naming the first clash found.
pub fn ensure_distinct(
    inputs: &[NamedPath<'_>],
    outputs: &[NamedPath<'_>],
) -> Result<(), OverlapError> {
    let identify = |n: &NamedPath<'_>| (n.path != Path::new("-")).then(|| FileIdentity::of(n.path));
    let inputs: Vec<_> = inputs
        .iter()
        .filter_map(|n| identify(n).map(|id| (n, id)))
        .collect();
    let outputs: Vec<_> = outputs
        .iter()
        .filter_map(|n| identify(n).map(|id| (n, id)))
        .collect();
    for (i, (out, out_id)) in outputs.iter().enumerate() {
        if let Some((input, _)) = inputs.iter().find(|(_, id)| id == out_id) {
            return Err(OverlapError::OutputIsInput {
                output_role: out.role.to_owned(),
                output: out.path.display().to_string(),
                input_role: input.role.to_owned(),
                input: input.path.display().to_string(),
            });
        }
        if let Some((other, _)) = outputs[..i].iter().find(|(_, id)| id == out_id) {
            return Err(OverlapError::OutputsShareAFile {
                first_role: other.role.to_owned(),
                first: other.path.display().to_string(),
                second_role: out.role.to_owned(),
                second: out.path.display().to_string(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_output_on_an_input_is_refused_under_any_name() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("same.csv");
        std::fs::write(&data, "ts,v\n").unwrap();
        let dotted = dir.path().join(".").join("same.csv");
        let linked = dir.path().join("link.csv");
        std::os::unix::fs::symlink(&data, &linked).unwrap();
        let hard = dir.path().join("hard.csv");
        std::fs::hard_link(&data, &hard).unwrap();
        for (name, out) in [
            ("same name", &data),
            ("dotted", &dotted),
            ("symlink", &linked),
            ("hard link", &hard),
        ] {
            let err = ensure_distinct(
                &[NamedPath::new("--input", &data)],
                &[NamedPath::new("--output", out)],
            )
            .expect_err(name);
            assert!(
                matches!(err, OverlapError::OutputIsInput { .. }),
                "{name}: {err}"
            );
            assert!(err.to_string().contains("--output"), "{name}: {err}");
        }
        assert_eq!(std::fs::read_to_string(&data).unwrap(), "ts,v\n");
    }

    #[test]
    fn two_outputs_on_one_new_file_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("ao.csv");
        let b = dir.path().join("sub").join("..").join("ao.csv");
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let err = ensure_distinct(
            &[],
            &[
                NamedPath::new("--output", &a),
                NamedPath::new("--alerts", &b),
            ],
        )
        .unwrap_err();
        assert!(
            matches!(err, OverlapError::OutputsShareAFile { .. }),
            "{err}"
        );
        assert!(!a.exists(), "nothing is created by the check");
    }

    #[test]
    fn distinct_files_and_standard_streams_pass() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.csv");
        std::fs::write(&input, "ts,v\n").unwrap();
        let dash = Path::new("-");
        ensure_distinct(
            &[
                NamedPath::new("--input", dash),
                NamedPath::new("rule file", &input),
            ],
            &[
                NamedPath::new("--alerts", dash),
                NamedPath::new("--output", &dir.path().join("out.csv")),
                NamedPath::new("--json", dash),
            ],
        )
        .unwrap();
    }
}

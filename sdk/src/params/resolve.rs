//! Checking given values against a schema: every problem found, with suggestions.

use super::{ParamSpec, ParamType, ParamValue};

/// Why parameters were refused; every message names the parameter.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ParamError {
    /// No parameter of that name.
    #[error("unknown parameter `{name}`{}; known: {}", suggestion.as_ref().map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default(), known.join(", "))]
    Unknown {
        /// The name given.
        name: String,
        /// The closest known name, if one is close.
        suggestion: Option<String>,
        /// Every known name.
        known: Vec<String>,
    },
    /// The parameter was given twice.
    #[error("parameter `{name}` is given more than once")]
    Duplicate {
        /// The parameter.
        name: String,
    },
    /// The value has the wrong type.
    #[error("parameter `{name}` expects {expected}, got {found}")]
    WrongType {
        /// The parameter.
        name: String,
        /// What it accepts.
        expected: String,
        /// What it got.
        found: String,
    },
    /// The value is outside the allowed range.
    #[error("parameter `{name}` must be {allowed}, got {value}")]
    OutOfRange {
        /// The parameter.
        name: String,
        /// The value given.
        value: String,
        /// The allowed range, e.g. `>= 2`.
        allowed: String,
    },
    /// The word is not one of the choices.
    #[error("parameter `{name}` must be one of {}, got `{value}`", choices.join(", "))]
    NotAChoice {
        /// The parameter.
        name: String,
        /// The word given.
        value: String,
        /// The allowed words.
        choices: Vec<String>,
    },
    /// The text could not be read as a value.
    #[error("parameter `{name}` expects {expected}, got `{text}`")]
    Unparsable {
        /// The parameter.
        name: String,
        /// The text given.
        text: String,
        /// What it accepts.
        expected: String,
    },
}

/// The closest of `candidates` to `name`, if it is close enough to be a likely typo.
pub fn suggest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(name, c), c))
        .filter(|&(d, c)| d <= 2.max(c.len() / 3) && d < c.len().max(name.len()))
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c.to_owned())
}

/// Checked parameter values: every parameter of a schema, given or defaulted, in schema order.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    values: Vec<(String, ParamValue)>,
}

impl Resolved {
    /// Checks `given` against `schema`, filling in defaults; reports every problem.
    ///
    /// # Errors
    ///
    /// Every [`ParamError`] found, in the order of `given`.
    pub fn resolve(
        schema: &[ParamSpec],
        given: &[(String, ParamValue)],
    ) -> Result<Resolved, Vec<ParamError>> {
        let mut errors = Vec::new();
        let mut values: Vec<(String, ParamValue)> = schema
            .iter()
            .map(|s| (s.name.clone(), s.default.clone()))
            .collect();
        let mut seen = vec![false; schema.len()];
        for (name, value) in given {
            match schema.iter().position(|s| &s.name == name) {
                None => errors.push(ParamError::Unknown {
                    name: name.clone(),
                    suggestion: suggest(name, schema.iter().map(|s| s.name.as_str())),
                    known: schema.iter().map(|s| s.name.clone()).collect(),
                }),
                Some(i) if seen[i] => errors.push(ParamError::Duplicate { name: name.clone() }),
                Some(i) => {
                    seen[i] = true;
                    match schema[i].check(value) {
                        Ok(v) => values[i].1 = v,
                        Err(e) => errors.push(e),
                    }
                }
            }
        }
        if errors.is_empty() {
            Ok(Resolved { values })
        } else {
            Err(errors)
        }
    }

    /// The value of parameter `name` as Rust type `T`.
    ///
    /// # Errors
    ///
    /// [`ParamError::WrongType`] if the value does not convert (a schema/struct mismatch).
    pub fn get<T: ParamType>(&self, name: &str) -> Result<T, ParamError> {
        let value = self.values.iter().find(|(n, _)| n == name).map(|(_, v)| v);
        value
            .and_then(T::from_value)
            .ok_or_else(|| ParamError::WrongType {
                name: name.to_owned(),
                expected: T::KIND.expectation().to_owned(),
                found: value.map_or_else(|| "nothing".to_owned(), ParamValue::describe),
            })
    }

    /// Every `(name, value)` pair, in schema order.
    pub fn values(&self) -> &[(String, ParamValue)] {
        &self.values
    }
}

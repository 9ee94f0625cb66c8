//! The error every detector call returns, and what it means for the engine.

use std::fmt;

/// Why a detector call failed; the engine reacts to the kind, people read the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[repr(u8)]
pub enum ErrorKind {
    /// The parameters do not fit the detector's schema (name, type or range).
    InvalidParams = 1,
    /// The input does not fit what the detector needs (column count, type, batch size).
    InvalidInput = 2,
    /// The detector could not compute a result.
    Failed = 3,
    /// The detector panicked; it stays unusable until it is reset.
    Panicked = 4,
    /// The detector does not support the call (for example saving its state).
    Unsupported = 5,
    /// A saved state was written by another detector or another state format version.
    IncompatibleState = 6,
    /// The plugin has no detector of the requested name.
    UnknownDetector = 7,
}

impl ErrorKind {
    /// Decodes a kind sent across the plugin boundary; unknown codes become `Failed`, so a
    /// plugin built against a newer SDK cannot make the engine misread an error.
    pub fn from_code(code: u8) -> ErrorKind {
        match code {
            1 => ErrorKind::InvalidParams,
            2 => ErrorKind::InvalidInput,
            4 => ErrorKind::Panicked,
            5 => ErrorKind::Unsupported,
            6 => ErrorKind::IncompatibleState,
            7 => ErrorKind::UnknownDetector,
            _ => ErrorKind::Failed,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidParams => "invalid parameters",
            ErrorKind::InvalidInput => "invalid input",
            ErrorKind::Failed => "failed",
            ErrorKind::Panicked => "panicked",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::IncompatibleState => "incompatible state",
            ErrorKind::UnknownDetector => "unknown detector",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed detector call: a kind the engine acts on and a message for people.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct DetectorError {
    kind: ErrorKind,
    message: String,
}

impl DetectorError {
    /// An error of `kind` with a lowercase message that names the offending value.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        DetectorError {
            kind,
            message: message.into(),
        }
    }

    /// Shorthand for an [`ErrorKind::InvalidInput`] error.
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidInput, message)
    }

    /// Shorthand for an [`ErrorKind::InvalidParams`] error.
    pub fn invalid_params(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidParams, message)
    }

    /// Shorthand for an [`ErrorKind::Failed`] error.
    pub fn failed(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Failed, message)
    }

    /// What went wrong, for the engine.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// What went wrong, for people.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl From<crate::params::ParamError> for DetectorError {
    fn from(err: crate::params::ParamError) -> Self {
        DetectorError::invalid_params(err.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips_through_its_code() {
        for kind in [
            ErrorKind::InvalidParams,
            ErrorKind::InvalidInput,
            ErrorKind::Failed,
            ErrorKind::Panicked,
            ErrorKind::Unsupported,
            ErrorKind::IncompatibleState,
            ErrorKind::UnknownDetector,
        ] {
            assert_eq!(ErrorKind::from_code(kind as u8), kind, "{kind}");
        }
        assert_eq!(ErrorKind::from_code(200), ErrorKind::Failed);
    }

    #[test]
    fn message_names_kind_and_cause() {
        let err = DetectorError::invalid_input("expected 1 input column, got 2");
        assert_eq!(
            err.to_string(),
            "invalid input: expected 1 input column, got 2"
        );
    }

    #[test]
    fn errors_are_send_and_sync() {
        fn check<T: Send + Sync + 'static>() {}
        check::<DetectorError>();
    }
}

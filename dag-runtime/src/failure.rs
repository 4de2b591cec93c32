//! Why one attempt of a task failed: an error, a panic or a timeout.

use std::any::Any;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Why one attempt of a task failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    message: String,
    kind: FailureKind,
    retryable: bool,
}

/// What ended an attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum FailureKind {
    /// The task returned `Err`.
    Error,
    /// The task panicked.
    Panic,
    /// The attempt ran past its timeout.
    Timeout,
}

impl Failure {
    /// The task returned this error. `retryable` is what the task's `retry_if` said.
    pub fn error(error: &dyn fmt::Display, retryable: bool) -> Self {
        Self {
            message: error.to_string(),
            kind: FailureKind::Error,
            retryable,
        }
    }

    pub(crate) fn panic(payload: &(dyn Any + Send)) -> Self {
        let message = if let Some(s) = payload.downcast_ref::<&str>() {
            (*s).to_owned()
        } else if let Some(s) = payload.downcast_ref::<String>() {
            s.clone()
        } else {
            "a panic with a non-string payload".to_owned()
        };
        Self {
            message: format!("panicked: {message}"),
            kind: FailureKind::Panic,
            retryable: true,
        }
    }

    /// A failure that another attempt cannot fix (a store or encoding problem).
    pub(crate) fn fatal(message: String) -> Self {
        Self {
            message,
            kind: FailureKind::Error,
            retryable: false,
        }
    }

    pub(crate) fn timeout(after: std::time::Duration) -> Self {
        Self {
            message: format!("timed out after {after:?}"),
            kind: FailureKind::Timeout,
            retryable: true,
        }
    }

    /// A wait that ran past its time limit, said in `message`; waiting again would not help.
    pub(crate) fn timed_out(message: String) -> Self {
        Self {
            message,
            kind: FailureKind::Timeout,
            retryable: false,
        }
    }

    /// The error's text.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Error, panic or timeout.
    pub fn kind(&self) -> FailureKind {
        self.kind
    }

    /// `false` when the task's `retry_if` ruled out another attempt.
    pub fn is_retryable(&self) -> bool {
        self.retryable
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

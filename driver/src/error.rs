//! The driver's top-level error and its process exit codes.
//!
//! Every module has its own `thiserror` enum whose messages say how to fix the problem; each
//! implements [`ExitStatus`] to say which exit code it maps to. `?` turns any of them into
//! [`Error`], which `main` prints as a chain and maps to the process exit code.

use std::fmt;

/// Process exit codes, documented in the README. Stable: scripts and the nightly trigger
/// branch on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[repr(u8)]
pub enum ExitCode {
    Success = 0,
    /// A bug or an unexpected condition; the message says what.
    Internal = 1,
    /// Command-line usage error (clap's own code).
    Usage = 2,
    /// A step ended FAILED.
    StepFailed = 3,
    /// The run was cancelled (Ctrl-C, SIGTERM) or a step was cancelled.
    Cancelled = 4,
    /// The run's wall-clock deadline passed.
    TimedOut = 5,
    /// Bad configuration or an unusable input file.
    BadInput = 6,
    /// AWS refused or could not be reached (credentials, permissions, endpoint).
    Aws = 7,
    /// Another run of the same date holds the lock.
    LockHeld = 8,
    /// The database refused or could not be reached.
    Database = 9,
    /// The EMR cluster ended (TERMINATED_WITH_ERRORS, terminated under the run) or never became
    /// WAITING / RUNNING; its `StateChangeReason` is printed.
    ClusterFailed = 10,
    /// `check`: the newest run date loaded is older than `--max-age` (or nothing is loaded).
    Stale = 11,
    /// `check`: the newest run ended without succeeding.
    RunFailed = 12,
}

impl ExitCode {
    pub fn code(self) -> u8 {
        self as u8
    }
}

/// Implemented by every module error: which exit code it maps to.
pub trait ExitStatus {
    fn exit_code(&self) -> ExitCode;
}

/// Any module error, with the exit code it maps to.
pub struct Error {
    inner: Box<dyn std::error::Error + Send + Sync + 'static>,
    code: ExitCode,
}

impl Error {
    pub fn new<E>(code: ExitCode, error: E) -> Self
    where
        E: Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    {
        Error { inner: error.into(), code }
    }

    pub fn exit_code(&self) -> ExitCode {
        self.code
    }

    /// The error and its sources, outermost first, one line each.
    pub fn chain(&self) -> Vec<String> {
        let mut lines = vec![self.inner.to_string()];
        let mut source = self.inner.source();
        while let Some(cause) = source {
            let line = cause.to_string();
            if lines.last() != Some(&line) {
                lines.push(line);
            }
            source = cause.source();
        }
        lines
    }
}

impl<E> From<E> for Error
where
    E: std::error::Error + ExitStatus + Send + Sync + 'static,
{
    fn from(error: E) -> Self {
        let code = error.exit_code();
        Error { inner: Box::new(error), code }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.inner, f)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (exit code {})", self.chain().join(": "), self.code.code())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

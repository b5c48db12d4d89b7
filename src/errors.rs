//! Errors are values until the SQL boundary; here each becomes one ereport with its SQLSTATE.

use jwt_guard_core::roles::RoleRefusal;
use jwt_guard_core::{KeyError, Rejection};
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::{PgLogLevel, PgSqlErrorCode};

/// Shown with every refused escape, whichever hook caught it.
pub const ESCAPE_HINT: &str =
    "The role comes only from a token: use jwt_guard.authenticate(); an identity ends at COMMIT or ROLLBACK.";

#[derive(Debug)]
pub enum GuardError {
    /// The token was refused (28000).
    Token(Rejection),
    /// The token's role may not be assumed (42501).
    Role(String),
    /// Called where switching identity is unsafe (42501).
    Context(String),
    /// A locked session tried to change role or step outside its grant (42501).
    Escape(String),
    /// The token's permissions claim does not grant what the statement does (42501).
    Denied(String),
    /// Bad key material or key set (22023).
    Key(KeyError),
    /// A setting holds an unusable value (22023).
    Setting(String),
    /// The library was not preloaded (55000).
    NotPreloaded,
    /// Internal state that must never be wrong is (XX000); the statement is refused.
    Internal(String),
}

impl From<Rejection> for GuardError {
    fn from(r: Rejection) -> Self {
        GuardError::Token(r)
    }
}

impl From<KeyError> for GuardError {
    fn from(k: KeyError) -> Self {
        GuardError::Key(k)
    }
}

impl From<RoleRefusal> for GuardError {
    fn from(r: RoleRefusal) -> Self {
        GuardError::Role(r.to_string())
    }
}

impl GuardError {
    fn sqlstate(&self) -> PgSqlErrorCode {
        match self {
            GuardError::Token(_) => PgSqlErrorCode::ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION,
            GuardError::Role(_) | GuardError::Context(_) | GuardError::Escape(_) | GuardError::Denied(_) => {
                PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE
            }
            GuardError::Key(_) | GuardError::Setting(_) => PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            GuardError::NotPreloaded => PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            GuardError::Internal(_) => PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
        }
    }

    /// A stable, machine-readable reason for audit lines.
    pub fn reason(&self) -> &'static str {
        match self {
            GuardError::Token(r) => r.code(),
            GuardError::Role(_) => "role_refused",
            GuardError::Context(_) => "unsafe_context",
            GuardError::Escape(_) => "escape",
            GuardError::Denied(_) => "denied",
            GuardError::Key(_) => "key_error",
            GuardError::Setting(_) => "setting",
            GuardError::NotPreloaded => "not_preloaded",
            GuardError::Internal(_) => "internal",
        }
    }

    pub(crate) fn message(&self) -> String {
        match self {
            GuardError::Token(r) => format!("pg_jwt_guard: token rejected: {r}"),
            GuardError::Role(m) => format!("pg_jwt_guard: {m}"),
            GuardError::Context(m) => format!("pg_jwt_guard: {m}"),
            GuardError::Escape(m) | GuardError::Denied(m) => format!("pg_jwt_guard: {m}"),
            GuardError::Key(k) => format!("pg_jwt_guard: {k}"),
            GuardError::Setting(m) | GuardError::Internal(m) => format!("pg_jwt_guard: {m}"),
            GuardError::NotPreloaded => {
                "pg_jwt_guard: the library must be loaded through shared_preload_libraries".into()
            }
        }
    }

    fn hint(&self) -> Option<&'static str> {
        match self {
            GuardError::NotPreloaded => {
                Some("Add pg_jwt_guard to shared_preload_libraries in postgresql.conf and restart the server.")
            }
            GuardError::Escape(_) => Some(ESCAPE_HINT),
            GuardError::Token(Rejection::BadCharacters) => Some("Pass the bare token, without a \"Bearer \" prefix."),
            _ => None,
        }
    }

    /// Raises the error; never returns.
    pub fn raise(self) -> ! {
        let mut report = ErrorReport::new(self.sqlstate(), self.message(), "pg_jwt_guard");
        if let Some(h) = self.hint() {
            report = report.set_hint(h);
        }
        report.report(PgLogLevel::ERROR);
        unreachable!("ERROR does not return")
    }
}

/// Unwraps a result at the SQL boundary.
pub trait OrRaise<T> {
    fn or_raise(self) -> T;
}

impl<T, E: Into<GuardError>> OrRaise<T> for Result<T, E> {
    fn or_raise(self) -> T {
        match self {
            Ok(v) => v,
            Err(e) => e.into().raise(),
        }
    }
}

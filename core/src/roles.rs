//! Role-claim rules that need no catalog: syntax, reserved names and the allow-list.
//! The extension adds the catalog checks (attributes, memberships, ownership).

use crate::error::printable;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoleRefusal {
    NoRole,
    BadName(String),
    Reserved(String),
    NotAllowed(String),
}

impl fmt::Display for RoleRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RoleRefusal::NoRole => write!(f, "token has no role claim and pg_jwt_guard.default_role is not set"),
            RoleRefusal::BadName(r) => write!(
                f,
                "role \"{}\" is not a valid role name (1-63 characters of A-Z a-z 0-9 _ -)",
                printable(r)
            ),
            RoleRefusal::Reserved(r) => write!(f, "role \"{}\" is reserved and can never be assumed", printable(r)),
            RoleRefusal::NotAllowed(r) => {
                write!(f, "role \"{}\" is not in pg_jwt_guard.allowed_roles", printable(r))
            }
        }
    }
}

const RESERVED: &[&str] = &["none", "public", "current_user", "session_user", "current_role", "user"];

/// Syntax and reserved-name check shared by tokens and the allowed_roles setting.
pub fn check_name(name: &str) -> Result<(), RoleRefusal> {
    let syntax_ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !syntax_ok {
        return Err(RoleRefusal::BadName(name.to_owned()));
    }
    if name.starts_with("pg_") || RESERVED.iter().any(|r| r.eq_ignore_ascii_case(name)) {
        return Err(RoleRefusal::Reserved(name.to_owned()));
    }
    Ok(())
}

/// Parses `pg_jwt_guard.allowed_roles`; every entry must be a valid, unreserved name.
pub fn parse_allowed(value: &str) -> Result<Vec<String>, RoleRefusal> {
    let roles = crate::policy::split_list(value);
    roles.iter().try_for_each(|r| check_name(r))?;
    Ok(roles)
}

/// Chooses the role for a token: its claim, else the default; then syntax and allow-list.
pub fn choose(claimed: Option<&str>, default_role: Option<&str>, allowed: &[String]) -> Result<String, RoleRefusal> {
    let role = claimed
        .or(default_role.filter(|d| !d.is_empty()))
        .ok_or(RoleRefusal::NoRole)?;
    check_name(role)?;
    if !allowed.iter().any(|a| a == role) {
        return Err(RoleRefusal::NotAllowed(role.to_owned()));
    }
    Ok(role.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed() -> Vec<String> {
        vec!["app_user".into(), "Admin".into()]
    }

    #[test]
    fn exact_allow_list_match() {
        assert_eq!(choose(Some("app_user"), None, &allowed()), Ok("app_user".into()));
        assert_eq!(choose(Some("Admin"), None, &allowed()), Ok("Admin".into()));
        assert!(matches!(
            choose(Some("admin"), None, &allowed()),
            Err(RoleRefusal::NotAllowed(_))
        ));
        assert!(matches!(
            choose(Some("APP_USER"), None, &allowed()),
            Err(RoleRefusal::NotAllowed(_))
        ));
        assert!(matches!(
            choose(Some("postgres"), None, &allowed()),
            Err(RoleRefusal::NotAllowed(_))
        ));
    }

    #[test]
    fn reserved_and_malformed_names() {
        for r in [
            "none",
            "NONE",
            "public",
            "PUBLIC",
            "current_user",
            "session_user",
            "current_role",
            "pg_read_all_data",
            "pg_database_owner",
        ] {
            assert!(matches!(check_name(r), Err(RoleRefusal::Reserved(_))), "{r}");
        }
        for r in [
            "",
            " app_user",
            "app_user ",
            "a\"b",
            "x' OR '1'='1",
            "a\nb",
            "a\0b",
            "аdmin",
            &"a".repeat(64),
        ] {
            assert!(matches!(check_name(r), Err(RoleRefusal::BadName(_))), "{r:?}");
        }
        assert!(check_name(&"a".repeat(63)).is_ok());
    }

    #[test]
    fn default_role_only_without_claim() {
        assert_eq!(choose(None, Some("app_user"), &allowed()), Ok("app_user".into()));
        assert_eq!(choose(None, Some(""), &allowed()), Err(RoleRefusal::NoRole));
        assert_eq!(choose(None, None, &allowed()), Err(RoleRefusal::NoRole));
    }

    #[test]
    fn setting_refuses_bad_entries() {
        assert_eq!(parse_allowed(" a , b ").unwrap(), vec!["a", "b"]);
        assert!(parse_allowed("a, postgres\"").is_err());
        assert!(parse_allowed("pg_monitor").is_err());
    }
}

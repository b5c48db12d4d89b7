//! Role-claim rules that need no catalog: syntax, reserved names and the allow-list.
//! The extension adds the catalog checks (attributes, memberships, ownership).

use crate::claims::RoleClaim;
use crate::error::printable;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoleRefusal {
    NoRole,
    BadName(String),
    Reserved(String),
    NotAllowed(String),
    /// The allow-list is empty: no token can assume any role.
    EmptyAllowList,
    /// `authenticate(token, role)` asked for a role the token's claim does not list.
    NotClaimed(String),
    /// A role-list claim of which no entry is on the allow-list.
    NoneAllowed(Vec<String>),
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
            RoleRefusal::EmptyAllowList => write!(f, "pg_jwt_guard.allowed_roles is empty: no token may assume a role"),
            RoleRefusal::NotClaimed(r) => {
                write!(f, "role \"{}\" is not in the token's role claim", printable(r))
            }
            RoleRefusal::NoneAllowed(rs) => write!(
                f,
                "none of the token's roles ({}) is in pg_jwt_guard.allowed_roles",
                shown(rs)
            ),
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

fn map_roles(claim: &RoleClaim, role_map: &[(String, String)]) -> RoleClaim {
    let map = |r: &String| {
        role_map
            .iter()
            .find(|(from, _)| from == r)
            .map(|(_, to)| to.clone())
            .unwrap_or_else(|| r.clone())
    };
    match claim {
        RoleClaim::One(r) => RoleClaim::One(map(r)),
        RoleClaim::Many(rs) => RoleClaim::Many(rs.iter().map(map).collect()),
    }
}

/// At most eight names, each made printable, for a message.
fn shown(names: &[String]) -> String {
    let mut out: Vec<String> = names.iter().take(8).map(|n| format!("\"{}\"", printable(n))).collect();
    if names.len() > 8 {
        out.push(format!("and {} more", names.len() - 8));
    }
    out.join(", ")
}

/// Chooses the role for a token, then checks syntax and allow-list:
/// - `requested` (the `role` argument of authenticate): it must be one of the claimed roles;
/// - else a single claimed role; or the first claimed role in the token's order that is on
///   the allow-list; or, without a role claim, the default role.
pub fn choose(
    claimed: Option<&RoleClaim>,
    requested: Option<&str>,
    default_role: Option<&str>,
    allowed: &[String],
) -> Result<String, RoleRefusal> {
    choose_mapped(claimed, &[], requested, default_role, allowed)
}

/// `choose`, with the claim's values first mapped through `role_map` (claim value → database
/// role; unmapped values stay as they are), as an issuer profile asks.
pub fn choose_mapped(
    claimed: Option<&RoleClaim>,
    role_map: &[(String, String)],
    requested: Option<&str>,
    default_role: Option<&str>,
    allowed: &[String],
) -> Result<String, RoleRefusal> {
    if allowed.is_empty() {
        return Err(RoleRefusal::EmptyAllowList);
    }
    let mapped = claimed.map(|c| map_roles(c, role_map));
    let claimed = mapped.as_ref();
    let role = match (requested, claimed) {
        (Some(r), Some(c)) if c.names().contains(&r) => r.to_owned(),
        (Some(r), _) => return Err(RoleRefusal::NotClaimed(r.to_owned())),
        (None, Some(RoleClaim::One(r))) => r.clone(),
        (None, Some(RoleClaim::Many(rs))) => rs
            .iter()
            .find(|r| check_name(r).is_ok() && allowed.contains(r))
            .cloned()
            .ok_or_else(|| RoleRefusal::NoneAllowed(rs.clone()))?,
        (None, None) => default_role
            .filter(|d| !d.is_empty())
            .ok_or(RoleRefusal::NoRole)?
            .to_owned(),
    };
    check_name(&role)?;
    if !allowed.contains(&role) {
        return Err(RoleRefusal::NotAllowed(role));
    }
    Ok(role)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed() -> Vec<String> {
        vec!["app_user".into(), "Admin".into()]
    }

    fn one(r: &str) -> RoleClaim {
        RoleClaim::One(r.into())
    }

    fn many(rs: &[&str]) -> RoleClaim {
        RoleClaim::Many(rs.iter().map(|r| r.to_string()).collect())
    }

    fn pick(claim: &RoleClaim) -> Result<String, RoleRefusal> {
        choose(Some(claim), None, None, &allowed())
    }

    #[test]
    fn exact_allow_list_match() {
        assert_eq!(pick(&one("app_user")), Ok("app_user".into()));
        assert_eq!(pick(&one("Admin")), Ok("Admin".into()));
        for r in ["admin", "APP_USER", "postgres"] {
            assert!(matches!(pick(&one(r)), Err(RoleRefusal::NotAllowed(_))), "{r}");
        }
    }

    #[test]
    fn role_lists_take_the_first_allowed_entry_in_token_order() {
        assert_eq!(
            pick(&many(&["offline_access", "Admin", "app_user"])),
            Ok("Admin".into())
        );
        assert_eq!(pick(&many(&["pg_monitor", "a b", "app_user"])), Ok("app_user".into()));
        assert_eq!(
            pick(&many(&["uma_authorization", "postgres"])),
            Err(RoleRefusal::NoneAllowed(vec![
                "uma_authorization".into(),
                "postgres".into()
            ]))
        );
    }

    #[test]
    fn a_requested_role_must_be_claimed_and_allowed() {
        let claim = many(&["app_user", "Admin", "postgres"]);
        let ask = |r| choose(Some(&claim), Some(r), None, &allowed());
        assert_eq!(ask("Admin"), Ok("Admin".into()));
        assert_eq!(ask("postgres"), Err(RoleRefusal::NotAllowed("postgres".into())));
        assert_eq!(ask("app_reader"), Err(RoleRefusal::NotClaimed("app_reader".into())));
        assert_eq!(
            choose(None, Some("app_user"), Some("app_user"), &allowed()),
            Err(RoleRefusal::NotClaimed("app_user".into()))
        );
        assert_eq!(
            choose(Some(&one("app_user")), Some("app_user"), None, &allowed()),
            Ok("app_user".into())
        );
    }

    #[test]
    fn a_role_map_renames_claim_values_before_the_allow_list() {
        let map = vec![("org:admin".to_string(), "Admin".to_string())];
        let claim = many(&["org:member", "org:admin"]);
        assert_eq!(
            choose_mapped(Some(&claim), &map, None, None, &allowed()),
            Ok("Admin".into())
        );
        assert_eq!(
            choose_mapped(Some(&claim), &map, Some("Admin"), None, &allowed()),
            Ok("Admin".into())
        );
        assert_eq!(
            choose_mapped(Some(&one("org:member")), &map, None, None, &allowed()),
            Err(RoleRefusal::BadName("org:member".into()))
        );
    }

    #[test]
    fn an_empty_allow_list_says_so() {
        assert_eq!(
            choose(Some(&one("app_user")), None, None, &[]),
            Err(RoleRefusal::EmptyAllowList)
        );
        assert!(RoleRefusal::EmptyAllowList.to_string().contains("is empty"));
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
        assert_eq!(choose(None, None, Some("app_user"), &allowed()), Ok("app_user".into()));
        assert_eq!(choose(None, None, Some(""), &allowed()), Err(RoleRefusal::NoRole));
        assert_eq!(choose(None, None, None, &allowed()), Err(RoleRefusal::NoRole));
    }

    #[test]
    fn setting_refuses_bad_entries() {
        assert_eq!(parse_allowed(" a , b ").unwrap(), vec!["a", "b"]);
        assert!(parse_allowed("a, postgres\"").is_err());
        assert!(parse_allowed("pg_monitor").is_err());
    }
}

//! What the administrator configured, as plain values (read from settings by the extension).

/// Verification policy. `Policy::default()` carries the documented setting defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Accepted `iss` values (exact). Empty: only keys registered with an issuer work.
    pub issuers: Vec<String>,
    /// Accepted `aud` values. Empty: tokens that carry `aud` are refused.
    pub audience: Vec<String>,
    /// Clock skew allowed on `exp`, `nbf` and `iat`, in seconds.
    pub leeway: u64,
    /// Longest accepted lifetime (`exp - iat` and `exp - now`), in seconds.
    pub max_lifetime: u64,
    /// Largest token accepted, in bytes, checked before anything else.
    pub max_token_bytes: usize,
    /// Claim naming the database role; a name starting with `/` is a JSON Pointer.
    pub role_claim: String,
    /// Claim naming the tenant; a name starting with `/` is a JSON Pointer.
    pub tenant_claim: String,
    /// Claim listing table commands and named actions (see `permissions`).
    pub permissions_claim: String,
    /// Which limits an issuer profile set; refusals name the limit that applied.
    pub from_profile: FromProfile,
}

/// The limits of a `Policy` that come from an issuer profile rather than the settings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FromProfile {
    pub audience: bool,
    pub max_lifetime: bool,
    pub max_token_bytes: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            issuers: Vec::new(),
            audience: Vec::new(),
            leeway: 30,
            max_lifetime: 3600,
            max_token_bytes: 8192,
            role_claim: "role".into(),
            tenant_claim: "tenant_id".into(),
            permissions_claim: "permissions".into(),
            from_profile: FromProfile::default(),
        }
    }
}

/// Per-issuer overrides of the global policy (`jwt_guard.set_issuer`). `None` keeps the
/// global value. An issuer that has a profile is accepted like one listed in the issuers setting.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IssuerProfile {
    pub issuer: String,
    pub audience: Option<Vec<String>>,
    pub max_lifetime: Option<u64>,
    pub max_token_bytes: Option<usize>,
    pub role_claim: Option<String>,
    pub tenant_claim: Option<String>,
    pub default_role: Option<String>,
    pub permissions_claim: Option<String>,
    pub jwks_uri: Option<String>,
    /// Role-claim value → database role, applied before the allow-list; unmapped values stay.
    pub role_map: Vec<(String, String)>,
    /// Each jti is accepted once; tokens without jti are refused.
    pub replay_protection: bool,
}

impl Policy {
    /// The policy for tokens of `profile.issuer`.
    pub fn with_profile(&self, profile: &IssuerProfile) -> Policy {
        let mut p = self.clone();
        if !p.issuers.contains(&profile.issuer) {
            p.issuers.push(profile.issuer.clone());
        }
        if let Some(a) = &profile.audience {
            p.audience = a.clone();
        }
        p.max_lifetime = profile.max_lifetime.unwrap_or(p.max_lifetime);
        p.max_token_bytes = profile.max_token_bytes.unwrap_or(p.max_token_bytes);
        p.from_profile = FromProfile {
            audience: profile.audience.is_some(),
            max_lifetime: profile.max_lifetime.is_some(),
            max_token_bytes: profile.max_token_bytes.is_some(),
        };
        let pick = |own: &Option<String>, global: &String| own.clone().unwrap_or_else(|| global.clone());
        p.role_claim = pick(&profile.role_claim, &self.role_claim);
        p.tenant_claim = pick(&profile.tenant_claim, &self.tenant_claim);
        p.permissions_claim = pick(&profile.permissions_claim, &self.permissions_claim);
        p
    }
}

/// A claim setting's value (`role_claim`, `tenant_claim`, `permissions_claim`, and the same
/// fields of an issuer profile): a claim name, or a JSON Pointer when it starts with `/`.
/// Refused: an empty name (it would match no claim, so every token would fall back to the
/// defaults), and a pointer with a `~` not followed by `0` or `1` (RFC 6901 has no other
/// escape, so such a pointer is a typo that would silently match nothing).
pub fn check_claim_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("a claim name must not be empty".into());
    }
    if name.starts_with('/') {
        let mut bytes = name.bytes();
        while let Some(b) = bytes.next() {
            if b == b'~' && !matches!(bytes.next(), Some(b'0' | b'1')) {
                return Err(format!(
                    "\"{name}\" is not a JSON Pointer: \"~\" must be followed by 0 (for ~) or 1 (for /)"
                ));
            }
        }
    }
    Ok(())
}

/// Splits a comma-separated setting; blanks around entries are ignored, empty entries dropped.
pub fn split_list(value: &str) -> Vec<String> {
    list_items(value).map(str::to_owned).collect()
}

/// The entries of a comma-separated setting, trimmed, empty ones left out; borrowed.
pub fn list_items(value: &str) -> impl Iterator<Item = &str> {
    value.split(',').map(str::trim).filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_profile_overrides_only_what_it_sets_and_accepts_its_issuer() {
        let global = Policy {
            issuers: vec!["https://a".into()],
            audience: vec!["api".into()],
            ..Policy::default()
        };
        let profile = IssuerProfile {
            issuer: "https://cognito".into(),
            audience: Some(vec![]),
            max_lifetime: Some(86_400),
            role_claim: Some("/cognito:groups".into()),
            ..IssuerProfile::default()
        };
        let p = global.with_profile(&profile);
        assert_eq!(p.issuers, vec!["https://a".to_string(), "https://cognito".to_string()]);
        assert!(p.audience.is_empty());
        assert_eq!(p.max_lifetime, 86_400);
        assert_eq!(p.role_claim, "/cognito:groups");
        assert_eq!(p.tenant_claim, global.tenant_claim);
        assert_eq!(p.max_token_bytes, global.max_token_bytes);
        assert_eq!(
            p.from_profile,
            FromProfile {
                audience: true,
                max_lifetime: true,
                max_token_bytes: false
            }
        );
    }

    #[test]
    fn claim_names_and_pointers() {
        for good in [
            "role",
            "cognito:groups",
            "https://hasura.io/jwt/claims",
            "/realm_access/roles",
            "/a~1b/c~0d",
            "~x",
            "/",
        ] {
            assert_eq!(check_claim_name(good), Ok(()), "{good}");
        }
        for bad in ["", "/a~2b", "/a~", "/~/x"] {
            assert!(check_claim_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn lists() {
        assert_eq!(split_list(" a, b ,,c "), vec!["a", "b", "c"]);
        assert!(split_list("").is_empty());
    }
}

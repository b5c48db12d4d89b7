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
        }
    }
}

/// Splits a comma-separated setting; blanks around entries are ignored, empty entries dropped.
pub fn split_list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists() {
        assert_eq!(split_list(" a, b ,,c "), vec!["a", "b", "c"]);
        assert!(split_list("").is_empty());
    }
}

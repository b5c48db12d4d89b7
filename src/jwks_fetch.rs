//! Fetching an issuer's `jwks_uri`: https only, TLS verified, bounded in size and time.
//!
//! Nothing here touches PostgreSQL; the worker calls it outside any transaction.

use jwt_guard_core::published::redact_uri;
use std::time::Duration;
use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};

/// The limits and trust a fetch runs under.
pub struct FetchConfig {
    pub timeout: Duration,
    pub max_bytes: u64,
    /// PEM file of the certificate authorities to trust; `None` trusts the system's roots.
    pub ca_file: Option<String>,
}

/// The document's bytes, or why there are none (a message that never carries the URI's
/// query or user information).
pub fn fetch(uri: &str, config: &FetchConfig) -> Result<Vec<u8>, String> {
    let agent = agent(config)?;
    let describe = |e: ureq::Error| describe(e, uri, config);
    let mut response = agent
        .get(uri)
        .header("Accept", "application/json, application/jwk-set+json")
        .call()
        .map_err(describe)?;
    // Anything but 200 OK (a 204, a 203 from a proxy) is not the document.
    if response.status() != 200 {
        return Err(format!("HTTP status {}", response.status().as_u16()));
    }
    response
        .body_mut()
        .with_config()
        .limit(config.max_bytes)
        .read_to_vec()
        .map_err(describe)
}

fn agent(config: &FetchConfig) -> Result<ureq::Agent, String> {
    let roots = match &config.ca_file {
        Some(path) => RootCerts::new_with_certs(&read_ca_file(path)?),
        None => RootCerts::PlatformVerifier,
    };
    let tls = TlsConfig::builder().root_certs(roots).build();
    Ok(ureq::Agent::config_builder()
        .https_only(true)
        .max_redirects(3)
        .timeout_global(Some(config.timeout))
        .max_response_header_size(16 * 1024)
        .user_agent("pg_jwt_guard")
        .tls_config(tls)
        .build()
        .into())
}

fn read_ca_file(path: &str) -> Result<Vec<Certificate<'static>>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("pg_jwt_guard.jwks_ca_file \"{path}\" cannot be read: {e}"))?;
    let certs: Vec<_> = ureq::tls::parse_pem(&pem)
        .filter_map(|item| match item {
            Ok(PemItem::Certificate(c)) => Some(c),
            _ => None,
        })
        .collect();
    if certs.is_empty() {
        return Err(format!("pg_jwt_guard.jwks_ca_file \"{path}\" holds no PEM certificate"));
    }
    Ok(certs)
}

fn describe(e: ureq::Error, uri: &str, config: &FetchConfig) -> String {
    match e {
        ureq::Error::StatusCode(code) => format!("HTTP status {code}"),
        ureq::Error::Timeout(_) => format!("no complete answer within {} s", config.timeout.as_secs()),
        ureq::Error::BodyExceedsLimit(_) => format!("the document is larger than {} bytes", config.max_bytes),
        ureq::Error::RequireHttpsOnly(_) => "a redirect to a URL that is not https was refused".into(),
        ureq::Error::TooManyRedirects => "more than 3 redirects".into(),
        other => other.to_string().replace(uri, &redact_uri(uri)),
    }
}

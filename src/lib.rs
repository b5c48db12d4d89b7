//! pg_jwt_guard: PostgreSQL as the enforcement point for JWT-authenticated access.
//!
//! This file wires the modules together; the logic lives in the modules it names.

use pgrx::prelude::*;

mod accessors;
mod admin;
mod audit;
mod cache;
mod compat;
mod context;
mod errors;
mod explain;
mod functions;
mod guardrails;
mod hooks;
mod identity;
mod isolation;
mod jwks_fetch;
mod jwks_worker;
mod keystore;
mod latest;
mod lockdown;
mod nodes;
mod pg_version;
mod preload;
mod prepared_jsonb;
mod profiles;
mod protect;
mod replay;
mod request_claims;
mod revocation;
mod role_checks;
mod settings;
mod setup_check;

::pgrx::pg_module_magic!(name, version);

#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    preload::record();
    settings::define();
    identity::init();
    if preload::is_preloading() {
        cache::init();
        lockdown::install();
        hooks::install();
        jwks_worker::install();
        replay::install();
        request_claims::define();
    }
    jwt_guard_core::provider::install();
}

#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}
    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec!["shared_preload_libraries = 'pg_jwt_guard'"]
    }
}

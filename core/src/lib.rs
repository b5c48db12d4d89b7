//! Verification core of pg_jwt_guard.
//!
//! Token + key + policy + clock in, verified identity or a typed rejection out.
//! Nothing here knows about PostgreSQL; the extension maps results to SQL.

pub mod claims;
pub mod error;
pub mod explain;
pub mod json;
pub mod keys;
pub mod permissions;
pub mod policy;
pub mod provider;
pub mod published;
pub mod revocation;
pub mod roles;
pub mod rsa;
pub mod token;

pub use claims::{Identity, RoleClaim};
pub use error::{KeyError, Rejection, ReplayRefusal, Revocation};
pub use keys::VerifyingKey;
pub use policy::{IssuerProfile, Policy};
pub use token::{parse, verify, ParsedToken};

pub use jsonwebtoken::Algorithm;

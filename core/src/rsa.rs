//! RSA signature verification (RS256/384/512, PS256/384/512) with OpenSSL, the library
//! PostgreSQL itself links. A key is parsed once, when it is loaded, and kept with a
//! verification context; ring rebuilt the key from (n, e) on every verification, and its RSA
//! arithmetic is about half as fast.
//!
//! The key is 2048 to 8192 bits with an odd exponent of at most 32 bits (checked where keys
//! are read, `keys::check_rsa_components`); here the signature must have exactly the modulus'
//! length, and PSS uses MGF1 with the message digest and a salt as long as the digest
//! (RFC 7518, 3.5).

use jsonwebtoken::Algorithm;
use openssl::bn::BigNum;
use openssl::md::{Md, MdRef};
use openssl::pkey::{PKey, Public};
use openssl::pkey_ctx::PkeyCtx;
use openssl::rsa::{Padding, Rsa};
use openssl::sign::RsaPssSaltlen;
use ring::digest;
use std::sync::{Arc, Mutex};

/// An RSA public key with a verification context set up for one algorithm. Set up once:
/// OpenSSL 3 looks up the algorithm and exports the key on every context it creates, which
/// costs about as much as the verification itself.
#[derive(Clone)]
pub struct RsaKey {
    ctx: Arc<Mutex<PkeyCtx<Public>>>,
    digest: &'static digest::Algorithm,
    modulus_bytes: usize,
}

impl RsaKey {
    /// From big-endian modulus and exponent (leading zeros allowed), for `alg` only.
    pub fn new(alg: Algorithm, n: &[u8], e: &[u8]) -> Option<RsaKey> {
        let (digest, md, pss) = scheme(alg)?;
        let rsa = Rsa::from_public_components(BigNum::from_slice(n).ok()?, BigNum::from_slice(e).ok()?).ok()?;
        let modulus_bytes = rsa.size() as usize;
        let pkey = PKey::from_rsa(rsa).ok()?;
        let ctx = verifying_context(&pkey, md, pss).ok()?;
        Some(RsaKey {
            ctx: Arc::new(Mutex::new(ctx)),
            digest,
            modulus_bytes,
        })
    }

    /// True only for a valid signature of `msg` under this key.
    pub fn verify(&self, msg: &[u8], signature: &[u8]) -> bool {
        if signature.len() != self.modulus_bytes {
            return false;
        }
        let hash = digest::digest(self.digest, msg);
        let Ok(mut ctx) = self.ctx.lock() else {
            return false;
        };
        ctx.verify(hash.as_ref(), signature).unwrap_or(false)
    }
}

fn verifying_context(
    pkey: &PKey<Public>,
    md: &MdRef,
    pss: bool,
) -> Result<PkeyCtx<Public>, openssl::error::ErrorStack> {
    let mut ctx = PkeyCtx::new(pkey)?;
    ctx.verify_init()?;
    ctx.set_signature_md(md)?;
    if pss {
        ctx.set_rsa_padding(Padding::PKCS1_PSS)?;
        ctx.set_rsa_mgf1_md(md)?;
        ctx.set_rsa_pss_saltlen(RsaPssSaltlen::DIGEST_LENGTH)?;
    } else {
        ctx.set_rsa_padding(Padding::PKCS1)?;
    }
    Ok(ctx)
}

/// The digest (ring's, and OpenSSL's name for it) and whether the padding is PSS.
fn scheme(alg: Algorithm) -> Option<(&'static digest::Algorithm, &'static MdRef, bool)> {
    Some(match alg {
        Algorithm::RS256 => (&digest::SHA256, Md::sha256(), false),
        Algorithm::RS384 => (&digest::SHA384, Md::sha384(), false),
        Algorithm::RS512 => (&digest::SHA512, Md::sha512(), false),
        Algorithm::PS256 => (&digest::SHA256, Md::sha256(), true),
        Algorithm::PS384 => (&digest::SHA384, Md::sha384(), true),
        Algorithm::PS512 => (&digest::SHA512, Md::sha512(), true),
        _ => return None,
    })
}

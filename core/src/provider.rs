//! The ring-backed `CryptoProvider` for jsonwebtoken.
//!
//! Every factory checks the key family against the algorithm before it does anything else,
//! so an RSA or EC public key can never be used as an HMAC secret (algorithm confusion, A4).
//! Signing exists for tests and tools; the extension itself only verifies. `token::check_signature`
//! verifies RSA with OpenSSL (`rsa`) and the other families with `verify_signature` here, on the
//! signature it has already decoded.

use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::{Error, ErrorKind};
use jsonwebtoken::jwk::{EllipticCurve, ThumbprintHash};
use jsonwebtoken::signature::{self, Signer, Verifier};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use jsonwebtoken::{AlgorithmFamily, DecodingKeyKind};
use ring::{digest, hmac, rand, signature as sig};

pub static RING_PROVIDER: CryptoProvider = CryptoProvider {
    signer_factory: new_signer,
    verifier_factory: new_verifier,
    key_utils: KeyUtils {
        rsa_pub_components_from_private_key: unsupported_components,
        rsa_pub_components_from_public_key: unsupported_components,
        ec_pub_components_from_private_key: |_, _| Err(ErrorKind::InvalidKeyFormat.into()),
        ed_pub_components_from_private_key: |_, _| Err(ErrorKind::InvalidKeyFormat.into()),
        compute_digest,
    },
};

/// Installs the provider for this process; later calls are no-ops.
pub fn install() {
    let _ = RING_PROVIDER.install_default();
}

fn unsupported_components(_: &[u8]) -> jsonwebtoken::errors::Result<(Vec<u8>, Vec<u8>)> {
    Err(ErrorKind::InvalidKeyFormat.into())
}

fn compute_digest(data: &[u8], hash: ThumbprintHash) -> jsonwebtoken::errors::Result<Vec<u8>> {
    let alg = match hash {
        ThumbprintHash::SHA256 => &digest::SHA256,
        ThumbprintHash::SHA384 => &digest::SHA384,
        ThumbprintHash::SHA512 => &digest::SHA512,
        _ => return Err(ErrorKind::InvalidAlgorithm.into()),
    };
    Ok(digest::digest(alg, data).as_ref().to_vec())
}

fn family_must_match(alg: Algorithm, family: AlgorithmFamily) -> Result<(), Error> {
    if alg.family() == family {
        Ok(())
    } else {
        Err(ErrorKind::InvalidAlgorithm.into())
    }
}

/// A verifier: the algorithm and a copy of the public key or secret.
struct RingVerifier {
    alg: Algorithm,
    key: DecodingKey,
}

fn new_verifier(alg: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>, Error> {
    family_must_match(*alg, key.family())?;
    Ok(Box::new(RingVerifier {
        alg: *alg,
        key: key.clone(),
    }))
}

impl Verifier<Vec<u8>> for RingVerifier {
    fn verify(&self, msg: &[u8], signature: &Vec<u8>) -> Result<(), signature::Error> {
        if verify_signature(self.alg, &self.key, msg, signature) {
            Ok(())
        } else {
            Err(signature::Error::new())
        }
    }
}

/// True only for a valid signature (already base64-decoded) of `msg` under `key` with `alg`.
/// The key's family must be the algorithm's (A4), as for the factory.
pub(crate) fn verify_signature(alg: Algorithm, key: &DecodingKey, msg: &[u8], signature: &[u8]) -> bool {
    if family_must_match(alg, key.family()).is_err() {
        return false;
    }
    match (hmac_alg(alg), public_alg(alg), key.kind()) {
        (Some(h), _, DecodingKeyKind::SecretOrDer(secret)) => {
            hmac::verify(&hmac::Key::new(h, secret), msg, signature).is_ok()
        }
        (None, Some(p), DecodingKeyKind::SecretOrDer(der)) => {
            sig::UnparsedPublicKey::new(p, der).verify(msg, signature).is_ok()
        }
        (None, Some(_), DecodingKeyKind::RsaModulusExponent { n, e }) => match rsa_params(alg) {
            Some(p) => sig::RsaPublicKeyComponents { n, e }.verify(p, msg, signature).is_ok(),
            None => false,
        },
        _ => false,
    }
}

impl JwtVerifier for RingVerifier {
    fn algorithm(&self) -> Algorithm {
        self.alg
    }
}

fn hmac_alg(alg: Algorithm) -> Option<hmac::Algorithm> {
    match alg {
        Algorithm::HS256 => Some(hmac::HMAC_SHA256),
        Algorithm::HS384 => Some(hmac::HMAC_SHA384),
        Algorithm::HS512 => Some(hmac::HMAC_SHA512),
        _ => None,
    }
}

fn rsa_params(alg: Algorithm) -> Option<&'static sig::RsaParameters> {
    match alg {
        Algorithm::RS256 => Some(&sig::RSA_PKCS1_2048_8192_SHA256),
        Algorithm::RS384 => Some(&sig::RSA_PKCS1_2048_8192_SHA384),
        Algorithm::RS512 => Some(&sig::RSA_PKCS1_2048_8192_SHA512),
        Algorithm::PS256 => Some(&sig::RSA_PSS_2048_8192_SHA256),
        Algorithm::PS384 => Some(&sig::RSA_PSS_2048_8192_SHA384),
        Algorithm::PS512 => Some(&sig::RSA_PSS_2048_8192_SHA512),
        _ => None,
    }
}

fn public_alg(alg: Algorithm) -> Option<&'static dyn sig::VerificationAlgorithm> {
    match alg {
        Algorithm::ES256 => Some(&sig::ECDSA_P256_SHA256_FIXED),
        Algorithm::ES384 => Some(&sig::ECDSA_P384_SHA384_FIXED),
        Algorithm::EdDSA => Some(&sig::ED25519),
        other => rsa_params(other).map(|p| p as &'static dyn sig::VerificationAlgorithm),
    }
}

/// A signer, for tests and tools.
struct RingSigner {
    alg: Algorithm,
    key: EncodingKey,
}

fn new_signer(alg: &Algorithm, key: &EncodingKey) -> Result<Box<dyn JwtSigner>, Error> {
    family_must_match(*alg, key.family())?;
    Ok(Box::new(RingSigner {
        alg: *alg,
        key: key.clone(),
    }))
}

impl Signer<Vec<u8>> for RingSigner {
    fn try_sign(&self, msg: &[u8]) -> Result<Vec<u8>, signature::Error> {
        let bytes = self.key.as_bytes();
        let rng = rand::SystemRandom::new();
        if let Some(h) = hmac_alg(self.alg) {
            return Ok(hmac::sign(&hmac::Key::new(h, bytes), msg).as_ref().to_vec());
        }
        match self.alg {
            Algorithm::ES256 | Algorithm::ES384 => {
                let a = if self.alg == Algorithm::ES256 {
                    &sig::ECDSA_P256_SHA256_FIXED_SIGNING
                } else {
                    &sig::ECDSA_P384_SHA384_FIXED_SIGNING
                };
                let pair = sig::EcdsaKeyPair::from_pkcs8(a, bytes, &rng).map_err(|_| signature::Error::new())?;
                Ok(pair
                    .sign(&rng, msg)
                    .map_err(|_| signature::Error::new())?
                    .as_ref()
                    .to_vec())
            }
            Algorithm::EdDSA => {
                let pair =
                    sig::Ed25519KeyPair::from_pkcs8_maybe_unchecked(bytes).map_err(|_| signature::Error::new())?;
                Ok(pair.sign(msg).as_ref().to_vec())
            }
            _ => {
                let pair = sig::RsaKeyPair::from_der(bytes).map_err(|_| signature::Error::new())?;
                let padding: &dyn sig::RsaEncoding = match self.alg {
                    Algorithm::RS256 => &sig::RSA_PKCS1_SHA256,
                    Algorithm::RS384 => &sig::RSA_PKCS1_SHA384,
                    Algorithm::RS512 => &sig::RSA_PKCS1_SHA512,
                    Algorithm::PS256 => &sig::RSA_PSS_SHA256,
                    Algorithm::PS384 => &sig::RSA_PSS_SHA384,
                    _ => &sig::RSA_PSS_SHA512,
                };
                let mut out = vec![0; pair.public().modulus_len()];
                pair.sign(padding, &rng, msg, &mut out)
                    .map_err(|_| signature::Error::new())?;
                Ok(out)
            }
        }
    }
}

impl JwtSigner for RingSigner {
    fn algorithm(&self) -> Algorithm {
        self.alg
    }
}

/// Which curve an uncompressed SEC1 point belongs to, by length.
pub fn ec_curve_of_point(point: &[u8]) -> Option<EllipticCurve> {
    match (point.len(), point.first()) {
        (65, Some(4)) => Some(EllipticCurve::P256),
        (97, Some(4)) => Some(EllipticCurve::P384),
        _ => None,
    }
}

/// True when `point` is a valid public point of its curve. ring checks the point fully
/// when it is used as an ECDH peer key, so one ephemeral agreement tells us.
pub fn ec_point_is_valid(point: &[u8]) -> bool {
    use ring::agreement;
    let curve = match ec_curve_of_point(point) {
        Some(EllipticCurve::P256) => &agreement::ECDH_P256,
        Some(EllipticCurve::P384) => &agreement::ECDH_P384,
        _ => return false,
    };
    let rng = rand::SystemRandom::new();
    let Ok(mine) = agreement::EphemeralPrivateKey::generate(curve, &rng) else {
        return false;
    };
    let peer = agreement::UnparsedPublicKey::new(curve, point);
    agreement::agree_ephemeral(mine, &peer, |_| ()).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A4 at the lowest level: an EC public key's bytes used as an HMAC secret verify nothing,
    /// even with a correct HMAC over them, because the key's family is not the algorithm's.
    #[test]
    fn a_public_key_is_never_an_hmac_secret() {
        let public_der = b"an EC public key's DER bytes, as an attacker would reuse them";
        let key = DecodingKey::from_ec_der(public_der);
        let msg = b"header.payload";
        let forged = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, public_der), msg);
        assert!(!verify_signature(Algorithm::HS256, &key, msg, forged.as_ref()));
        let secret = DecodingKey::from_secret(public_der);
        assert!(verify_signature(Algorithm::HS256, &secret, msg, forged.as_ref()));
    }
}

//! RSA verification (OpenSSL, one prepared context per key; `src/rsa.rs`) against signature
//! values and encodings an attacker can send (docs/threat-model.md A16, A17): values at and
//! past the modulus, hand-built PKCS#1 v1.5 encodings with altered DigestInfo or padding, and
//! a shared verification context after many refusals. Signing goes through OpenSSL directly,
//! so any parameter can be chosen.

mod common;

use common::*;
use jwt_guard_core::{keys::import_jwk, parse, verify, Rejection, VerifyingKey};
use openssl::bn::BigNum;
use openssl::error::ErrorStack;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::rsa::{Padding, Rsa};
use openssl::sign::{RsaPssSaltlen, Signer};
use std::sync::OnceLock;

fn gen(bits: u32, e: u32) -> Rsa<Private> {
    let e = BigNum::from_u32(e).unwrap();
    Rsa::generate_with_e(bits, &e).unwrap()
}

fn k2048() -> &'static Rsa<Private> {
    static K: OnceLock<Rsa<Private>> = OnceLock::new();
    K.get_or_init(|| gen(2048, 65537))
}

fn jwk_key(rsa: &Rsa<Private>, alg: &str) -> VerifyingKey {
    let jwk = serde_json::json!({"kty":"RSA","kid":"k","alg":alg,
        "n": b64(rsa.n().to_vec()), "e": b64(rsa.e().to_vec())});
    import_jwk(&jwk, None).expect("key imports").key
}

fn input(alg: &str, extra: u32) -> String {
    let header = format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#);
    let mut c = good_claims();
    c["jti"] = serde_json::json!(format!("j{extra}"));
    format!("{}.{}", b64(header), b64(c.to_string()))
}

fn md(alg: &str) -> MessageDigest {
    match &alg[2..] {
        "256" => MessageDigest::sha256(),
        "384" => MessageDigest::sha384(),
        _ => MessageDigest::sha512(),
    }
}

fn sign(rsa: &Rsa<Private>, alg: &str, inp: &str) -> Vec<u8> {
    let pk = PKey::from_rsa(rsa.clone()).unwrap();
    let mut s = Signer::new(md(alg), &pk).unwrap();
    if alg.starts_with("PS") {
        s.set_rsa_padding(Padding::PKCS1_PSS).unwrap();
        s.set_rsa_pss_saltlen(RsaPssSaltlen::DIGEST_LENGTH).unwrap();
        s.set_rsa_mgf1_md(md(alg)).unwrap();
    } else {
        s.set_rsa_padding(Padding::PKCS1).unwrap();
    }
    s.sign_oneshot_to_vec(inp.as_bytes()).unwrap()
}

fn run(inp: &str, sig: &[u8], key: &VerifyingKey) -> Result<(), Rejection> {
    let token = format!("{inp}.{}", b64(sig));
    let parsed = parse(&token, 1 << 20)?;
    verify(&parsed, key, &policy(), NOW).map(|_| ())
}

/// Raw RSA private op on an encoded message (EM) of modulus length.
fn raw_sign(rsa: &Rsa<Private>, em: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; rsa.size() as usize];
    let n = rsa.private_encrypt(em, &mut out, Padding::NONE).unwrap();
    assert_eq!(n, out.len());
    out
}

fn queue_empty() -> bool {
    ErrorStack::get().errors().is_empty()
}

const DI_SHA256: [u8; 19] = [
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20,
];

fn pkcs1_em(k: usize, digest_info: &[u8], hash: &[u8], trailing: &[u8]) -> Vec<u8> {
    let t = [digest_info, hash, trailing].concat();
    let mut em = vec![0x00, 0x01];
    em.extend(std::iter::repeat_n(0xff, k - 3 - t.len()));
    em.push(0);
    em.extend(t);
    em
}

fn sha256(b: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, b).as_ref().to_vec()
}

#[test]
fn signature_values() {
    let rsa = k2048();
    let key = jwk_key(rsa, "RS256");
    let inp = input("RS256", 0);
    let good = sign(rsa, "RS256", &inp);
    assert_eq!(run(&inp, &good, &key), Ok(()));
    let k = rsa.size() as usize;
    let n = rsa.n().to_vec();
    let mut nm1 = BigNum::new().unwrap();
    nm1.checked_sub(rsa.n(), &BigNum::from_u32(1).unwrap()).unwrap();
    let mut one = vec![0u8; k];
    one[k - 1] = 1;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("zero", vec![0; k]),
        ("one", one),
        ("n", n.clone()),
        ("n-1", nm1.to_vec_padded(k as i32).unwrap()),
        ("all ff", vec![0xff; k]),
        ("empty", vec![]),
        ("short by one", good[1..].to_vec()),
        ("leading 00 + good", [&[0u8][..], &good].concat()),
        ("good + 00", [&good[..], &[0u8][..]].concat()),
        ("double length", [&good[..], &good[..]].concat()),
    ];
    for (what, s) in cases {
        assert_eq!(run(&inp, &s, &key), Err(Rejection::BadSignature), "{what}");
        assert!(queue_empty(), "queue after {what}");
    }
    // s + n, the same value modulo n, where it still fits in the modulus' length (for some keys
    // and signatures it does not: those are skipped).
    let mut tried = 0;
    for i in 0..2000 {
        let inp = input("RS256", i);
        let s = sign(rsa, "RS256", &inp);
        let mut sn = BigNum::new().unwrap();
        sn.checked_add(&BigNum::from_slice(&s).unwrap(), rsa.n()).unwrap();
        if sn.num_bytes() as usize == k {
            tried += 1;
            assert_eq!(run(&inp, &sn.to_vec(), &key), Err(Rejection::BadSignature), "s+n");
            assert_eq!(run(&inp, &s, &key), Ok(()));
            if tried > 3 {
                break;
            }
        }
    }
    // A valid signature whose first byte is zero is accepted, and refused with that byte cut.
    let mut found = 0;
    for i in 0..4000 {
        let inp = input("RS256", i);
        let s = sign(rsa, "RS256", &inp);
        if s[0] == 0 {
            found += 1;
            assert_eq!(run(&inp, &s, &key), Ok(()), "leading zero");
            assert_eq!(
                run(&inp, &s[1..], &key),
                Err(Rejection::BadSignature),
                "leading zero stripped"
            );
            if found >= 2 {
                break;
            }
        }
    }
    assert!(found > 0);
}

#[test]
fn pkcs1_digestinfo_variants() {
    let rsa = k2048();
    let key = jwk_key(rsa, "RS256");
    let k = rsa.size() as usize;
    let inp = input("RS256", 1);
    let h = sha256(inp.as_bytes());
    // The hand-built encoding verifies as it is: each refusal below is the alteration's.
    assert_eq!(
        run(&inp, &raw_sign(rsa, &pkcs1_em(k, &DI_SHA256, &h, &[])), &key),
        Ok(())
    );
    let no_null = vec![
        0x30, 0x2f, 0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x04, 0x20,
    ];
    let mut sha384_oid = DI_SHA256.to_vec();
    sha384_oid[14] = 0x02;
    let mut sha512_256_oid = DI_SHA256.to_vec();
    sha512_256_oid[14] = 0x06;
    let long_len = [&[0x30, 0x81, 0x31][..], &DI_SHA256[2..]].concat();
    let mut bad_outer_len = DI_SHA256.to_vec();
    bad_outer_len[1] = 0x32;
    let variants: Vec<(&str, Vec<u8>)> = vec![
        ("no NULL", pkcs1_em(k, &no_null, &h, &[])),
        ("SHA-384 OID", pkcs1_em(k, &sha384_oid, &h, &[])),
        ("SHA-512/256 OID", pkcs1_em(k, &sha512_256_oid, &h, &[])),
        ("long-form length", pkcs1_em(k, &long_len, &h, &[])),
        ("outer len +1 w/ trailing", pkcs1_em(k, &bad_outer_len, &h, &[0])),
        ("trailing garbage", pkcs1_em(k, &DI_SHA256, &h, &[0xde, 0xad])),
        ("bare hash", pkcs1_em(k, &[], &h, &[])),
        ("wrong hash", pkcs1_em(k, &DI_SHA256, &sha256(b"x"), &[])),
        ("block type 2", {
            let mut e = pkcs1_em(k, &DI_SHA256, &h, &[]);
            e[1] = 2;
            e
        }),
        ("padding byte not ff", {
            let mut e = pkcs1_em(k, &DI_SHA256, &h, &[]);
            e[5] = 0xfe;
            e
        }),
        ("garbage in padding then 00 earlier", {
            // 00 01 ff*8 00 <garbage> DigestInfo H : separator early
            let mut e = pkcs1_em(k, &DI_SHA256, &h, &[]);
            e[10] = 0;
            e
        }),
    ];
    for (what, em) in variants {
        assert_eq!(em.len(), k, "{what}");
        assert_eq!(
            run(&inp, &raw_sign(rsa, &em), &key),
            Err(Rejection::BadSignature),
            "{what}"
        );
        assert!(queue_empty(), "queue after {what}");
    }
}

#[test]
fn context_state_and_error_queue() {
    let rsa = k2048();
    for alg in ["RS256", "PS256"] {
        let key = jwk_key(rsa, alg);
        let clone = key.clone();
        let inp = input(alg, 3);
        let good = sign(rsa, alg, &inp);
        let k = rsa.size() as usize;
        let mut corrupt = good.clone();
        corrupt[100] ^= 0x55;
        let bads: Vec<Vec<u8>> = vec![vec![0xff; k], vec![0; k], rsa.n().to_vec(), corrupt, good[1..].to_vec()];
        let other_inp = input(alg, 4);
        for round in 0..50 {
            for b in &bads {
                assert_eq!(run(&inp, b, &key), Err(Rejection::BadSignature), "{alg} round {round}");
                assert!(queue_empty());
                assert_eq!(run(&inp, &good, &clone), Ok(()), "{alg} round {round}");
                assert!(queue_empty());
                // The good signature over another input.
                assert_eq!(run(&other_inp, &good, &key), Err(Rejection::BadSignature));
            }
        }
        // Stale errors on the queue before the call.
        let stale = match PKey::public_key_from_der(b"\x30\x03garbage") {
            Err(e) => e,
            Ok(_) => panic!(),
        };
        assert!(!stale.errors().is_empty());
        for e in stale.errors() {
            e.put();
        }
        assert_eq!(run(&inp, &good, &key), Ok(()), "valid with stale errors");
        // Errors other code left on the queue change neither verdict.
        let _ = ErrorStack::get();
        for e in stale.errors() {
            e.put();
        }
        assert_eq!(
            run(&inp, &bads[3], &key),
            Err(Rejection::BadSignature),
            "invalid with stale errors"
        );
        assert!(queue_empty(), "drained by the failing verify");
    }
}

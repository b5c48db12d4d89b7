#!/usr/bin/env python3
"""Writes the seed corpus in fuzz/corpus/<target>/ (run from anywhere; overwrites seeds).

The seeds are small and hand-made. The only secret in them is the fuzz-only HMAC key that the
targets themselves use. Public keys are generated afresh here, each with a kid saying it is a
generated test key; their private halves live in memory only and are never written.
Needs Python's `cryptography` package (scripts/lib.sh installs it for the tests).
"""
import base64
import hashlib
import hmac
import json
import os
import shutil

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
SECRET = b"fuzz-only-hmac-secret-not-a-real-key!!"
NOW = 1_800_000_000
ISS = "https://issuer.fuzz.test"


def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def js(v):
    return json.dumps(v, separators=(",", ":")).encode()


def mint(header: bytes, payload: bytes) -> bytes:
    si = f"{b64(header)}.{b64(payload)}"
    sig = hmac.new(SECRET, si.encode(), hashlib.sha256).digest()
    return f"{si}.{b64(sig)}".encode()


def write(target, name, data: bytes):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


HDR = js({"alg": "HS256", "typ": "JWT", "kid": "fuzz-key"})
CLAIMS = {
    "iss": ISS, "sub": "user-1", "aud": "api", "exp": NOW + 600, "iat": NOW - 10, "nbf": NOW - 10,
    "jti": "j-1", "role": "app_user", "tenant_id": "t-1", "scope": "read write",
    "permissions": ["select:orders", "update:sales.orders(status, note)", "export-report"],
}
POINTER_CLAIMS = {
    "iss": ISS, "exp": NOW + 600, "iat": NOW, "scp": ["read", "write"],
    "realm_access": {"role": "app_user"}, "org": {"id": "acme"},
    "authz": {"permissions": ["select:public.items(id,name)", "refund"]},
}
# RFC 7638 section 3.1's example RSA public key (a published test vector).
RFC7638_N = ("0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjB"
             "ZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZg"
             "nYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw"
             "0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw")
MINIMAL = {"iss": ISS, "aud": "api", "exp": NOW + 60}


def shutil_clear():
    for t in ["token", "json", "claims", "keys", "permissions"]:
        shutil.rmtree(os.path.join(ROOT, t), ignore_errors=True)


def token_seeds():
    full = mint(HDR, js(CLAIMS))
    write("token", "m0-valid-hs256", b"\x00" + full)
    write("token", "m1-valid-hs256-resign", b"\x01" + full)
    write("token", "m0-bad-signature", b"\x00" + full[:-4] + b"AAAA")
    write("token", "m0-two-segments", b"\x00" + full.rsplit(b".", 1)[0])
    write("token", "m0-four-segments", b"\x00" + full + b".e30")
    write("token", "m0-padding", b"\x00" + full + b"=")
    write("token", "m0-alg-none", b"\x00" + mint(js({"alg": "none"}), js(MINIMAL)).rsplit(b".", 1)[0] + b".")
    for name, hdr in [
        ("rs256", {"alg": "RS256", "kid": "k"}),
        ("crit", {"alg": "HS256", "crit": ["exp"]}),
        ("jku", {"alg": "HS256", "jku": "https://x.test/jwks"}),
        ("typ-at", {"alg": "HS256", "typ": "application/at+JWT"}),
        ("typ-bad", {"alg": "HS256", "typ": "JOSE"}),
        ("kid-long", {"alg": "HS256", "kid": "k" * 300}),
        ("kid-num", {"alg": "HS256", "kid": 7}),
    ]:
        write("token", f"m1-hdr-{name}", b"\x01" + mint(js(hdr), js(MINIMAL)))
    # Mode 2: header JSON NUL payload JSON, signed by the target (bit 2: pointer policy).
    write("token", "m2-full", b"\x02" + HDR + b"\x00" + js(CLAIMS))
    write("token", "m2-role-list", b"\x02" + HDR + b"\x00" + js({**MINIMAL, "role": ["uma_authorization", "anon"]}))
    write("token", "m2-minimal", b"\x02" + js({"alg": "HS256"}) + b"\x00" + js(MINIMAL))
    write("token", "m6-pointer", b"\x06" + js({"alg": "HS256"}) + b"\x00" + js(POINTER_CLAIMS))
    write("token", "m2-dup", b"\x02" + js({"alg": "HS256"}) + b"\x00" + b'{"role":"a","\\u0072ole":"b","exp":1}')
    write("token", "m2-aud-array", b"\x02" + HDR + b"\x00" + js({**MINIMAL, "aud": ["x", "api"], "scp": "a b"}))
    write("token", "m2-expired", b"\x02" + HDR + b"\x00" + js({**MINIMAL, "exp": NOW - 100, "iat": 1.5}))
    for name, levels in [("m2-depth-32", 31), ("m2-depth-33", 32)]:
        deep = b'{"iss":"' + ISS.encode() + b'","aud":"api","exp":1800000600,"x":' + b'{"a":' * levels + b"1" + b"}" * levels + b"}"
        write("token", name, b"\x02" + HDR + b"\x00" + deep)


def json_seeds():
    docs = {
        "object": js(CLAIMS),
        "pointer-claims": js(POINTER_CLAIMS),
        "array": b'[1,-0,1.5e308,-1e-300,18446744073709551615,-9223372036854775808,true,false,null]',
        "strings": '{"a":"\\u00e9\\ud83d\\ude00\\n\\"\\\\\\/","b":"é","c":""}'.encode(),
        "dup": b'{"role":"anon","role":"postgres"}',
        "dup-escaped": b'{"role":"a","\\u0072ole":"b"}',
        "dup-nested": b'[{"x":{"a":1,"a":2}}]',
        "lone-surrogate": b'{"a":"\\ud800"}',
        "bom": b"\xef\xbb\xbf{}",
        "trailing": b'{"a":1} x',
        "depth-32": b"[" * 32 + b"]" * 32,
        "depth-33": b'{"a":' * 33 + b"1" + b"}" * 33,
        "whitespace": b' \t\n\r{ "a" : [ ] , "b" : { } } \n',
        "number-edge": b"[1e400,0.1,1E-7,-0.0,123456789012345678901234567890]",
    }
    for name, doc in docs.items():
        write("json", name, doc)


def claims_seeds():
    write("claims", "m0-full", b"\x00" + js(CLAIMS))
    write("claims", "m10-full-kid-issuer", bytes([0x10 | 0x04]) + js(CLAIMS))
    write("claims", "m0-minimal", b"\x00" + js(MINIMAL))
    write("claims", "m6-pointer", bytes([0x02 | 0x04]) + js(POINTER_CLAIMS))
    write("claims", "m0-types", b"\x00" + js({**MINIMAL, "exp": 1.0e9, "nbf": "1", "iat": -1, "aud": [1]}))
    write("claims", "m0-nul", b"\x00" + js({**MINIMAL, "sub": "a\u0000b"}))
    write("claims", "m0-big-exp", b"\x00" + b'{"iss":"' + ISS.encode() + b'","exp":18446744073709551615}')
    write("claims", "m0-depth-32", b"\x00" + b'{"iss":"' + ISS.encode() + b'","aud":"api","exp":1800000600,"x":' + b"[" * 31 + b"]" * 31 + b"}")
    write("claims", "m0-role-list", b"\x00" + js({**MINIMAL, "role": ["offline_access", "pg_monitor", "app_user"]}))
    write("claims", "m6-role-list-pointer", bytes([0x02 | 0x04]) + js({**POINTER_CLAIMS, "realm_access": {"role": ["Admin", "anon"]}}))
    write("claims", "m0-lifetime", b"\x00" + js({**MINIMAL, "exp": NOW + 3631, "iat": NOW - 5}))
    write("claims", "m0-perm-bad", b"\x00" + js({**MINIMAL, "permissions": ["select:a.b.c"]}))
    write("claims", "m1-structured-a", b"\x01" + bytes(range(0, 256, 7)))
    write("claims", "m1-structured-b", b"\x03" + bytes((i * 37 + 11) % 256 for i in range(96)))


def der_spki(pub):
    return pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def pem_spki(pub):
    return pub.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def keys_seeds():
    rsa_pub = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    p256 = ec.generate_private_key(ec.SECP256R1()).public_key()
    p384 = ec.generate_private_key(ec.SECP384R1()).public_key()
    ed = ed25519.Ed25519PrivateKey.generate().public_key()
    n = rsa_pub.public_numbers().n.to_bytes(256, "big")
    e = (65537).to_bytes(3, "big")

    def coords(pub, size):
        nums = pub.public_numbers()
        return nums.x.to_bytes(size, "big"), nums.y.to_bytes(size, "big")

    x256, y256 = coords(p256, 32)
    x384, y384 = coords(p384, 48)
    edx = ed.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    kid = "generated-test-key-"
    jwks = {"keys": [
        {"kty": "RSA", "kid": kid + "rsa", "alg": "RS256", "use": "sig", "n": b64(n), "e": b64(e)},
        {"kty": "EC", "kid": kid + "p256", "crv": "P-256", "x": b64(x256), "y": b64(y256)},
        {"kty": "EC", "kid": kid + "p384", "crv": "P-384", "alg": "ES384", "x": b64(x384), "y": b64(y384),
         "key_ops": ["verify"]},
        {"kty": "OKP", "kid": kid + "ed25519", "crv": "Ed25519", "x": b64(edx)},
        {"kty": "oct", "kid": "fuzz-key", "alg": "HS256", "k": b64(SECRET)},
    ]}
    write("keys", "m0-jwks", b"\x00" + js(jwks))
    write("keys", "m8-jwks-issuer", b"\x08" + js({"keys": jwks["keys"][1:3]}))
    # Mode 6: classify_jwks (sync_jwks); high nibble n picks default alg n-1 in the target's list.
    # The kid-less RSA key is RFC 7638's own example (thumbprint NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs).
    rfc7638 = {"kty": "RSA", "e": "AQAB", "n": RFC7638_N}
    sync_doc = {"keys": [
        rfc7638,
        {"kty": "RSA", "kid": kid + "enc", "use": "enc", "n": b64(n), "e": b64(e)},
        {"kty": "EC", "crv": "P-256", "x": b64(x256), "y": b64(y256)},
        {"kty": "EC", "kid": kid + "p521", "crv": "P-521", "alg": "ES512", "x": "AA", "y": "AA"},
        jwks["keys"][3],
        jwks["keys"][3],
    ]}
    write("keys", "m6-classify", b"\x06" + js(sync_doc))
    write("keys", "m6-classify-default-rs256", b"\x46" + js(sync_doc))
    write("keys", "m7-thumbprint-rfc7638", b"\x07" + js(rfc7638))
    write("keys", "m7-thumbprint-jwks", b"\x07" + js(jwks))
    write("keys", "m0-jwks-dup-kid", b"\x00" + js({"keys": [jwks["keys"][1], jwks["keys"][1]]}))
    for k in jwks["keys"]:
        write("keys", "m1-jwk-" + k["kty"].lower() + "-" + k.get("crv", k.get("alg", "")), b"\x01" + js(k))
    for alg, pub in [("RS256", rsa_pub), ("PS384", rsa_pub), ("ES256", p256), ("ES384", p384), ("EdDSA", ed)]:
        write("keys", f"m2-pem-{alg}", b"\x02" + alg.encode() + b"\x00" + pem_spki(pub))
    pkcs1 = rsa_pub.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1)
    write("keys", "m2-pem-rsa-pkcs1", b"\x02RS512\x00" + pkcs1)
    write("keys", "m2-hmac-secret", b"\x02HS256\x00" + SECRET)
    write("keys", "m2-hmac-short", b"\x02HS512\x00" + SECRET)
    write("keys", "m2-pem-as-hmac", b"\x02HS256\x00" + pem_spki(p256))
    # Mode 3: label byte (0 PUBLIC KEY, 1 RSA PUBLIC KEY), alg byte (index into the target's list), DER.
    write("keys", "m3-der-rsa", b"\x03\x00\x03" + der_spki(rsa_pub))
    write("keys", "m3-der-rsa-pkcs1", b"\x03\x01\x06" + rsa_pub.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.PKCS1))
    write("keys", "m3-der-p256", b"\x03\x00\x09" + der_spki(p256))
    write("keys", "m3-der-p384", b"\x03\x00\x0a" + der_spki(p384))
    write("keys", "m3-der-ed25519", b"\x03\x00\x0b" + der_spki(ed))
    # Mode 4: shape byte, split byte (length of the second member), raw members.
    write("keys", "m4-rsa", b"\x04\x00\x03" + n + e)
    write("keys", "m4-p256", b"\x04\x01\x20" + x256 + y256)
    write("keys", "m4-p384", b"\x04\x02\x30" + x384 + y384)
    write("keys", "m4-ed25519", b"\x04\x03\x00" + edx)
    write("keys", "m4-oct", b"\x04\x04\x00" + SECRET)
    write("keys", "m4-rsa-no-kid-no-alg", b"\x04\x06\x03" + n + e)
    # Mode 5: format NUL alg NUL text, as the key store reads keys back.
    write("keys", "m5-load-jwk", b"\x05jwk\x00ES256\x00" + js(jwks["keys"][1]))
    write("keys", "m5-load-text", b"\x05text\x00HS256\x00" + SECRET)


def permissions_seeds():
    write("permissions", "m0-grammar", b"\x00" + js(CLAIMS["permissions"]))
    write("permissions", "m0-not-array", b"\x00" + js("select:orders"))
    write("permissions", "m0-number", b"\x00[1]")
    write("permissions", "m1-lines", b"\x01" + "\n".join([
        "select:orders", "insert:public.orders", "update:sales.orders(status, note)",
        "delete:orders", "truncate:audit.log", "select:public.items(id,name)", "refund", "SELECT:orders",
    ]).encode())
    write("permissions", "m1-malformed", b"\x01" + "\n".join([
        "select:", "select:.orders", "select:a.b.c", "select:orders(", "select:orders()",
        "select:orders(a,)", "delete:orders(a)", 'select:"Orders"', "select:1orders", "update:orders(a b)",
    ]).encode())
    write("permissions", "m1-quoted", b"\x01" + "\n".join([
        'delete:"order-items"', 'select:"My Schema"."Orders"', 'update:"a""b"("total-amount", note)',
        'select:"\u00e9t\u00e9"', 'update:orders:status', 'read:messages', 'select:"unterminated',
    ]).encode())
    write("permissions", "m1-long-ident", b"\x01select:" + b"a" * 63 + b"." + b"b" * 64)


if __name__ == "__main__":
    shutil_clear()
    token_seeds()
    json_seeds()
    claims_seeds()
    keys_seeds()
    permissions_seeds()
    for t in sorted(os.listdir(ROOT)):
        files = os.listdir(os.path.join(ROOT, t))
        size = sum(os.path.getsize(os.path.join(ROOT, t, f)) for f in files)
        print(f"{t}: {len(files)} seeds, {size} bytes")

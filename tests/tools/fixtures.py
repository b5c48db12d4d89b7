"""Test keys and tokens for the SQL suites, minted with PyJWT (an independent library).

Keys are generated fresh on every run; nothing here is a real credential. The result is a
dict of environment variables (KEY_*, JWKS_*, TOK_*) that the pg_regress files read with
psql's \\getenv, so no token or key ever appears in a committed file.
"""

import base64
import json
import os
import time

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

ISSUER = "https://issuer.test"
AUDIENCE = "orders-api"


def _pem_public(private_key):
    return private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def _pem_pkcs1(private_key):
    return private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.PKCS1
    ).decode()


def _pem_private(private_key):
    return private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _int_b64(n: int) -> str:
    return _b64(n.to_bytes((n.bit_length() + 7) // 8, "big"))


def _ec_jwk(private_key, kid, crv, size, **extra):
    nums = private_key.public_key().public_numbers()
    jwk = {"kty": "EC", "kid": kid, "crv": crv,
           "x": _b64(nums.x.to_bytes(size, "big")), "y": _b64(nums.y.to_bytes(size, "big"))}
    jwk.update(extra)
    return jwk


def _rsa_jwk(private_key, kid, **extra):
    nums = private_key.public_key().public_numbers()
    jwk = {"kty": "RSA", "kid": kid, "n": _int_b64(nums.n), "e": _int_b64(nums.e)}
    jwk.update(extra)
    return jwk


class Minter:
    """Signs tokens for one registered key."""

    def __init__(self, kid, alg, signing_key):
        self.kid, self.alg, self.signing_key = kid, alg, signing_key

    def claims(self, **overrides):
        now = int(time.time())
        claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "user-1", "role": "app_user",
                  "tenant_id": "acme", "iat": now, "exp": now + 600}
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def token(self, headers=None, **claims):
        h = {"kid": self.kid}
        h.update(headers or {})
        h = {k: v for k, v in h.items() if v is not None}
        payload = self.claims(**claims)
        try:
            return jwt.encode(payload, self.signing_key, algorithm=self.alg, headers=h)
        except TypeError:
            # PyJWT refuses some odd claim types (iss arrays); sign the JSON as it is.
            return self.raw(json.dumps(payload).encode(), headers=headers)

    def raw(self, payload: bytes, headers=None):
        """Signs exact payload bytes (duplicate keys, odd types) with a valid signature."""
        h = {"kid": self.kid}
        h.update(headers or {})
        return jwt.api_jws.PyJWS().encode(payload, self.signing_key, algorithm=self.alg, headers=h)


IDP_A = "https://idp-a.test/realms/acme"
IDP_B = "https://idp-b.test/"


def _nested(levels):
    """A value nested `levels` deep: {"n": {"n": ... "x"}}; inside the payload it adds one."""
    value = "x"
    for _ in range(levels):
        value = {"n": value}
    return value


def build():
    env = {}
    minters = {}

    # HMAC secrets: random, at least the hash size.
    for alg, size in (("HS256", 32), ("HS384", 48), ("HS512", 64)):
        secret = os.urandom(size).hex()  # 2*size printable bytes
        env[f"KEY_{alg}"] = secret
        minters[alg] = Minter(f"test-{alg.lower()}", alg, secret)

    for alg in ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512"):
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        env[f"KEY_{alg}"] = _pem_public(key) if alg != "RS384" else _pem_pkcs1(key)
        minters[alg] = Minter(f"test-{alg.lower()}", alg, key)

    p256 = ec.generate_private_key(ec.SECP256R1())
    p384 = ec.generate_private_key(ec.SECP384R1())
    ed = ed25519.Ed25519PrivateKey.generate()
    env["KEY_ES256"], env["KEY_ES384"], env["KEY_EDDSA"] = _pem_public(p256), _pem_public(p384), _pem_public(ed)
    minters["ES256"] = Minter("test-es256", "ES256", p256)
    minters["ES384"] = Minter("test-es384", "ES384", p384)
    minters["EdDSA"] = Minter("test-eddsa", "EdDSA", ed)

    # Weak or mismatched material for the key registration tests.
    env["KEY_RSA1024"] = _pem_public(rsa.generate_private_key(public_exponent=65537, key_size=1024))
    env["KEY_RSA_PRIVATE"] = _pem_private(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    env["KEY_HS256_SHORT"] = "x" * 31

    # JWKS: two good keys (imported), and sets that must be refused.
    jwks_p256 = ec.generate_private_key(ec.SECP256R1())
    jwks_rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    env["JWKS_GOOD"] = json.dumps({"keys": [
        _ec_jwk(jwks_p256, "jwks-es256", "P-256", 32, use="sig"),
        _rsa_jwk(jwks_rsa, "jwks-rs256", alg="RS256", key_ops=["verify"]),
    ]})
    env["JWKS_USE_ENC"] = json.dumps({"keys": [_ec_jwk(p256, "enc-1", "P-256", 32, use="enc")]})
    env["JWKS_OPS_ENCRYPT"] = json.dumps({"keys": [_ec_jwk(p256, "ops-1", "P-256", 32, key_ops=["encrypt"])]})
    env["JWKS_DUP_KID"] = json.dumps({"keys": [_ec_jwk(p256, "dup", "P-256", 32), _ec_jwk(p384, "dup", "P-384", 48)]})
    env["JWKS_CRV_MISMATCH"] = json.dumps({"keys": [_ec_jwk(p384, "crv-1", "P-384", 48, alg="ES256")]})
    env["JWKS_WEAK_RSA"] = json.dumps({"keys": [_rsa_jwk(
        rsa.generate_private_key(public_exponent=65537, key_size=1024), "weak-rsa", alg="RS256")]})
    env["JWKS_PRIVATE"] = json.dumps({"keys": [_ec_jwk(p256, "priv-1", "P-256", 32,
                                                       d=_b64(p256.private_numbers().private_value.to_bytes(32, "big")))]})
    # Two identity providers that both publish kid "1"; A also publishes an encryption key
    # (as Keycloak does) and later rotates to kid "2".
    idp_a, idp_b, idp_a2 = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    enc_rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    env["JWKS_IDP_A"] = json.dumps({"keys": [
        _ec_jwk(idp_a, "1", "P-256", 32, use="sig"),
        _rsa_jwk(enc_rsa, "enc-1", use="enc", alg="RSA-OAEP"),
    ]})
    env["JWKS_IDP_B"] = json.dumps({"keys": [_ec_jwk(idp_b, "1", "P-256", 32)]})
    env["JWKS_IDP_A_ROTATED"] = json.dumps({"keys": [_ec_jwk(idp_a2, "2", "P-256", 32, use="sig")]})
    idp = {"a": Minter("1", "ES256", idp_a), "b": Minter("1", "ES256", idp_b), "a2": Minter("2", "ES256", idp_a2)}
    minters["jwks-es256"] = Minter("jwks-es256", "ES256", jwks_p256)
    minters["jwks-rs256"] = Minter("jwks-rs256", "RS256", jwks_rsa)

    # One good token per algorithm, each with its own subject.
    for alg, m in minters.items():
        name = alg.upper().replace("-", "_")
        env[f"TOK_{name}"] = m.token(sub=f"sub-{alg}")

    hs, es = minters["HS256"], minters["ES256"]
    env["KEY_RETIRE_OPEN"] = os.urandom(32).hex()
    # A second HS512 secret that takes the place of "retire-me" in keys.sql, under the same kid.
    env["KEY_REPLACEMENT"] = os.urandom(64).hex()
    retire_open = Minter("retire-open", "HS256", env["KEY_RETIRE_OPEN"])
    now = int(time.time())
    tokens = {
        # Tenants and roles.
        "TENANT_ACME": es.token(sub="alice", tenant_id="acme", scope="orders:read orders:write"),
        # Revocation: one subject, an old and a fresh token, one without iat; two jtis.
        "REV_OLD": es.token(sub="rev-user", jti="rev-jti-old", iat=now - 900, exp=now + 600),
        "REV_FRESH": es.token(sub="rev-user", jti="rev-jti-fresh", iat=now - 5, exp=now + 600),
        "REV_NO_IAT": es.token(sub="rev-user", jti="rev-jti-noiat", iat=None, exp=now + 600),
        "REV_OTHER": es.token(sub="rev-other", jti="rev-jti-other", iat=now - 900, exp=now + 600),
        "TENANT_GLOBEX": es.token(sub="bob", tenant_id="globex", scp=["orders:read"]),
        "READER_ACME": es.token(sub="carol", role="app_reader", tenant_id="acme"),
        "NO_TENANT": es.token(sub="dave", tenant_id=None),
        "NO_ROLE": es.token(role=None),
        "RICH_CLAIMS": hs.token(sub="erin", user_uuid="1b4e28ba-2fa1-11d2-883f-0016d3cca427",
                                account=123456789012, account_str="42", bad_uuid="not-a-uuid",
                                org={"id": 7, "name": "Acme", "a/b": "slash", "tags": ["x", "y"]},
                                scope="read:orders  write:orders"),
        # Time claims (fixed values where the message prints them). Tokens that must be a few
        # seconds past exp when verified are minted by claim_rejections.sql in the same statement
        # that verifies them: one minted here would age while the cluster is built.
        "EXPIRED": es.token(iat=1699990000, exp=1700000000),
        "NBF_FUTURE": es.token(nbf=4102444800),
        "IAT_FUTURE": es.token(iat=4102444800, exp=4102445000),
        "TOO_LONG": es.token(iat=now - 10, exp=now - 10 + 7200),
        "NO_EXP": es.token(exp=None),
        "FOREVER": es.token(iat=None, exp=18446744073709551615),
        # Issuer and audience.
        "WRONG_ISS": es.token(iss="https://evil.test"),
        "NO_ISS": es.token(iss=None),
        "ISS_ARRAY": es.token(iss=["https://evil.test", ISSUER]),
        "WRONG_AUD": es.token(aud="billing-api"),
        "NO_AUD": es.token(aud=None),
        "AUD_ARRAY_OK": es.token(aud=["other-api", AUDIENCE]),
        "AUD_NUMBER": es.token(aud=123),
        "AUD_MIXED": es.token(aud=[AUDIENCE, 1]),
        # Roles (§2.4).
        "ROLE_SUPERUSER": es.token(role="su_role"),
        "ROLE_POSTGRES": es.token(role="postgres"),
        "ROLE_BYPASSRLS": es.token(role="bypass_role"),
        "ROLE_CREATEROLE": es.token(role="createrole_role"),
        "ROLE_CREATEDB": es.token(role="createdb_role"),
        "ROLE_REPLICATION": es.token(role="repl_role"),
        "ROLE_MONITOR_MEMBER": es.token(role="monitor_member"),
        "ROLE_BYPASS_MEMBER": es.token(role="bypass_member"),
        "ROLE_TABLE_OWNER": es.token(role="table_owner"),
        "ROLE_LOGIN": es.token(role="authenticator"),
        "ROLE_TESTER": es.token(role="tester"),
        "ROLE_LIST": es.token(role=["offline_access", "app_reader", "app_user"]),
        "ROLE_LIST_NONE": es.token(role=["uma_authorization", "postgres"]),
        "ROLE_KEYCLOAK": es.token(role=None, realm_access={"roles": ["default-roles-acme", "app_user"]}),
        "ROLE_FUNC_OWNER": es.token(role="func_owner"),
        "ROLE_SCHEMA_OWNER": es.token(role="schema_owner"),
        "ROLE_TRIGGER_HOLDER": es.token(role="trigger_holder"),
        "ROLE_OWNER_MEMBER": es.token(role="owner_member"),
        "ROLE_TRUNCATE_HOLDER": es.token(role="truncate_holder"),
        "ROLE_MAINTAIN_HOLDER": es.token(role="maintain_holder"),
        "ROLE_DB_OWNER": es.token(role="db_owner_role"),
        "ROLE_EXT_OWNER": es.token(role="ext_owner_role"),
        "ROLE_UNLISTED": es.token(role="unlisted_role"),
        "ROLE_MISSING": es.token(role="ghost_role"),
        "ROLE_NONE": es.token(role="none"),
        "ROLE_PUBLIC": es.token(role="PUBLIC"),
        "ROLE_CASE": es.token(role="App_User"),
        "ROLE_INJECTION": es.token(role='app_user"; SET ROLE postgres; --'),
        "ROLE_LONG": es.token(role="a" * 64),
        "ROLE_NUMBER": es.token(role=123),
        "ROLE_ARRAY": es.token(role=["app_user"]),
        "ROLE_NUL": es.token(role="app_user\u0000x"),
        "ROLE_PG": es.token(role="pg_read_all_data"),
        # Payload shapes.
        "DUP_ROLE": es.raw(json.dumps({"iss": ISSUER, "aud": AUDIENCE, "exp": now + 600}).encode()[:-1]
                           + b',"role":"app_user","role":"su_role"}'),
        "EXP_STRING": es.raw(json.dumps({"iss": ISSUER, "aud": AUDIENCE, "exp": "99999999999", "role": "app_user"}).encode()),
        "NBF_STRING": es.raw(json.dumps({"iss": ISSUER, "aud": AUDIENCE, "exp": now + 600, "nbf": "99999999999", "role": "app_user"}).encode()),
        "EXP_FLOAT": es.raw(json.dumps({"iss": ISSUER, "aud": AUDIENCE, "exp": now + 600.5, "role": "app_user"}).encode()),
        "PAYLOAD_ARRAY": es.raw(json.dumps([now + 600, None, None]).encode()),
        "NOT_JSON": es.raw(b"hello"),
        # Headers.
        "HDR_CRIT": es.token(headers={"crit": ["exp"]}),
        "HDR_JKU": es.token(headers={"jku": "https://evil.test/jwks.json"}),
        "HDR_JWK": es.token(headers={"jwk": {"kty": "oct", "k": "AA"}}),
        "HDR_X5C": es.token(headers={"x5c": ["MIIB"]}),
        "HDR_CTY": es.token(headers={"cty": "JWT"}),
        "HDR_TYP_BAD": es.token(headers={"typ": "dpop+jwt"}),
        "HDR_TYP_ATJWT": es.token(headers={"typ": "at+jwt"}),
        "KID_UNKNOWN": es.token(headers={"kid": "no-such-key"}),
        "KID_INJECTION": es.token(headers={"kid": "' OR 1=1 --"}),
        "KID_TRAVERSAL": es.token(headers={"kid": "../../../../dev/null"}),
        "NO_KID_HS256": hs.token(headers={"kid": None}),
        # Algorithm confusion: HS256 MACed with the ES256 public PEM, under the ES256 kid.
        "CONFUSION": jwt.api_jws.PyJWS().encode(
            json.dumps(es.claims()).encode(), b"x" * 32, algorithm="HS256", headers={"kid": "test-es256"}),
        # Same family downgrade: an RS256 key's kid on a PS256 token.
        "DOWNGRADE": jwt.encode(minters["PS256"].claims(), minters["PS256"].signing_key,
                                algorithm="PS256", headers={"kid": "test-rs256"}),
        # Permissions claims (guardrails).
        "PERM_READ": es.token(sub="reader", permissions=["select:orders", "select:notes", "select:notes_view", "refund"]),
        "PERM_WRITE": es.token(sub="writer", permissions=[
            "select:orders", "update:orders(item)", "insert:notes", "select:notes(id, tenant_id, body)",
            "delete:notes", "truncate:notes"]),
        "PERM_INSERT_ONLY": es.token(sub="inserter", permissions=["insert:notes"]),
        "PERM_NONE": es.token(sub="no-permissions"),
        "PERM_UPPER": es.token(sub="upper", permissions=["SELECT:orders"]),
        "PERM_MALFORMED": es.token(permissions=["select:orders;drop table orders"]),
        "PERM_MALFORMED_COLUMNS": es.token(permissions=["delete:orders(id)"]),
        "PERM_NOT_ARRAY": es.token(permissions="select:orders"),
        "PERM_INVOKER": es.token(sub="invoker", permissions=["select:notes_invoker"]),
        "PERM_INVOKER_FULL": es.token(sub="invoker", permissions=["select:notes_invoker", "select:notes"]),
        "DOC_A": es.token(sub="doc-a", tenant_id="11111111-1111-1111-1111-111111111111",
                          permissions=["select:docs", "insert:docs", "update:docs"]),
        "DOC_B": es.token(sub="doc-b", tenant_id="22222222-2222-2222-2222-222222222222",
                          permissions=["select:docs", "insert:docs", "update:docs"]),
        "RETIRE_ME": Minter("retire-me", "HS512", env["KEY_HS512"]).token(sub="to-be-retired"),
        "REPLACEMENT": Minter("retire-me", "HS512", env["KEY_REPLACEMENT"]).token(sub="replacement"),
        # Isolation: tenants that a loose comparison would confuse, claim shapes, nesting.
        "TENANT_ACMECORP": es.token(sub="acme-corp-user", tenant_id="acme-corp"),
        "TENANT_ACMECORPX": es.token(sub="acme-corpx-user", tenant_id="acme-corpX"),
        "TENANT_42": es.token(sub="t42", tenant_id="42"),
        "TENANT_42_0": es.token(sub="t42.0", tenant_id="42.0"),
        "TENANT_042": es.token(sub="t042", tenant_id="042"),
        "TENANT_NUMBER": es.token(sub="tnum", tenant_id=42),
        "DEEP_OK": es.token(sub="deep-ok", nest=_nested(31)),
        "DEEP_TOO": es.token(sub="deep-too", nest=_nested(32)),
        "DEEP_100": es.token(sub="deep-100", nest=_nested(100), permissions=["select:orders"]),
        "PERM_LO": es.token(sub="lo-user", permissions=["select:orders", "jwt_guard:large_objects"]),
        "PERM_PLAIN": es.token(sub="plain", permissions=["insert:plain_notes", "select:plain_notes(id)"]),
        "RETIRE_OPEN": retire_open.token(sub="retired-while-open"),
        # explain(): several checks failing at once; Supabase-style subjects (uuid) with an email.
        "EXPLAIN_MANY": es.token(iss="https://evil.test", aud="billing-api", role="su_role",
                                 iat=now - 3700, exp=now - 3600, tenant_id=7),
        "SUPA_USER": es.token(sub="1b4e28ba-2fa1-11d2-883f-0016d3cca427", email="user@example.test",
                              tenant_id="acme", role="app_user"),
        "SUPA_OTHER": es.token(sub="6f1c8e0a-0b1d-4c5e-9f00-000000000002", email="other@example.test",
                               tenant_id="globex", role="app_user"),
        # Issuer profiles and (issuer, kid) keys.
        "IDP_A": idp["a"].token(iss=IDP_A, sub="a-user"),
        "IDP_B": idp["b"].token(iss=IDP_B, sub="b-user"),
        "IDP_B_CLAIMS_A": idp["b"].token(iss=IDP_A, sub="forged"),
        "IDP_A_DAY": idp["a"].token(iss=IDP_A, sub="a-day", iat=now, exp=now + 86_000),
        "IDP_A_NO_AUD": idp["a"].token(iss=IDP_A, sub="a-no-aud", aud=None),
        "IDP_A_ORG_ROLE": idp["a"].token(iss=IDP_A, sub="a-org", role=None, org_role="org:admin"),
        "IDP_A_ROTATED": idp["a2"].token(iss=IDP_A, sub="a-rotated"),
        # A's key and signature, the issuer misspelt (no such issuer has a key under kid "1").
        "IDP_A_MISSPELT": idp["a"].token(iss=IDP_A + "/", sub="a-misspelt"),
    }
    for name, tok in tokens.items():
        env[f"TOK_{name}"] = tok

    good = tokens["TENANT_ACME"]
    head, body, sig = good.split(".")
    env["TOK_BEARER"] = "Bearer " + good
    env["TOK_PADDED"] = head + "==." + body + "." + sig
    env["TOK_TWO_SEGMENTS"] = head + "." + body
    env["TOK_FOUR_SEGMENTS"] = good + ".e30"
    env["TOK_BAD_SIG"] = head + "." + body + "." + ("A" if sig[0] != "A" else "B") + sig[1:]
    env["TOK_OTHER_SIG"] = head + "." + body + "." + tokens["TENANT_GLOBEX"].split(".")[2]
    env["TOK_NONE_ALG"] = _b64(b'{"alg":"none"}') + "." + body + "."
    env["TOK_HUGE"] = head + "." + "A" * 70000 + "." + sig
    env["ISSUER"] = ISSUER
    env["IDP_A"], env["IDP_B"] = IDP_A, IDP_B
    # A's key and signature over a payload with a duplicate member: the issuer cannot be read.
    env["TOK_IDP_A_DUPLICATE"] = idp["a"].raw(
        ('{"iss":"%s","aud":"%s","sub":"a","sub":"b","role":"app_user","exp":%d}' % (IDP_A, AUDIENCE, now + 600)).encode())
    env["AUDIENCE"] = AUDIENCE
    return env, minters


if __name__ == "__main__":
    env, _ = build()
    print(f"{len(env)} fixtures built")

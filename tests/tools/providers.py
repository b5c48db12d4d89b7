"""Identity-provider recipes of docs/identity-providers.md, run verbatim and checked.

Every fenced block preceded by `<!-- recipe: NAME -->` in the doc is executed with psql (as a
superuser, with the provider's key material passed as psql variables, exactly as the doc tells
readers to run it) against a throw-away cluster: Unix socket in a temporary directory, port
58470, the installed pg_jwt_guard preloaded, the doc's `postgresql.conf` block as configuration.

Tokens are shaped like each provider's and signed with keys generated at run time, by two
independent libraries: PyJWT (Auth0, Keycloak, Entra ID, Google, Firebase, Cognito) and node
`jose` v5 (Okta, Supabase, Clerk, Hasura-style, and jose's exportJWK() key for the thumbprint
check). `npm install jose@5` goes to a temporary directory unless PROVIDERS_NODE_DIR or
tests/tools/node_modules already has jose 5. Each check authenticates as the login role
`authenticator` over a direct psycopg connection (prepare_threshold=None, unnamed statements),
then asserts current_user, jwt_guard.tenant() and the rows RLS lets through, and at least one
refusal with its SQLSTATE. No token or key is printed.

Interface: run_all(env, minters) -> (passed, failed), one line per check:
`provider <name> ... ok (t s)` or `provider <name> ... FAILED: <reason>`.
Run on its own: python3 tests/tools/providers.py (as root).
"""

import base64
import datetime
import hashlib
import json
import os
import re
import secrets
import shutil
import string
import subprocess
import sys
import tempfile
import time
import uuid

import jwt
import psycopg
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import scenarios  # noqa: E402

PORT = 58470
DOC = os.path.normpath(os.path.join(HERE, "..", "..", "docs", "identity-providers.md"))
PSQL = os.path.join(scenarios.PGBIN, "psql")
WHO = "SELECT current_user::text, jwt_guard.tenant(), jwt_guard.sub()"
VERBOSE = bool(os.environ.get("PROVIDERS_VERBOSE"))  # print every acceptance and refusal (never a token)


class Fail(Exception):
    """A check's expectation did not hold; the message is the one-line reason."""


def expect(condition, message):
    if not condition:
        raise Fail(message)


# ---------------------------------------------------------------------------------- recipes

def load_recipes(path=None):
    path = path or DOC
    with open(path) as f:
        text = f.read()
    found = {}
    for m in re.finditer(r"<!-- recipe: ([\w.-]+) -->\s*\n```[\w-]*\n(.*?)```", text, re.S):
        if m.group(1) in found:
            raise RuntimeError(f"recipe {m.group(1)} appears twice in {path}")
        found[m.group(1)] = m.group(2)
    return found


class ProviderCluster(scenarios.Cluster):
    port = PORT


def _env():
    return {k: v for k, v in os.environ.items() if k != "RUST_BACKTRACE"}


class Ctx:
    """The cluster, the doc's recipes, node jose, and what checks share."""

    def __init__(self, cluster, recipes, jose):
        self.c, self.recipes, self.jose = cluster, recipes, jose
        self.ran = set()
        self.shared = {}

    def recipe(self, name, **variables):
        """Runs one recipe block with psql; returns its output (query results, no notices)."""
        if name not in self.recipes:
            raise Fail(f"docs/identity-providers.md has no recipe block {name!r}")
        cmd = [PSQL, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", self.c.dir, "-p", str(self.c.port),
               "-U", "postgres", "-d", "postgres"]
        for key, value in variables.items():
            cmd += ["-v", f"{key}={value}"]
        proc = subprocess.run(cmd, input=self.recipes[name], capture_output=True, text=True, env=_env(),
                              timeout=60)
        self.ran.add(name)
        if proc.returncode != 0:
            errors = [line for line in proc.stderr.splitlines() if "ERROR" in line or "FATAL" in line]
            raise Fail(f"recipe {name}: psql failed: {(errors or proc.stderr.splitlines() or ['?'])[0][:300]}")
        return proc.stdout

    def admin(self, sql, params=()):
        with self.c.connect() as conn:
            cur = conn.execute(sql, params)
            return cur.fetchall() if cur.description else None

    def session(self):
        return psycopg.connect(host=self.c.dir, port=self.c.port, user="authenticator", dbname="postgres",
                               autocommit=False, prepare_threshold=None)


class Probe:
    """Transactions of the login role: BEGIN; authenticate; queries; ROLLBACK."""

    def __init__(self, conn):
        self.conn = conn

    def tx(self, token, queries, role=None):
        with self.conn.transaction(force_rollback=True):
            if role is None:
                self.conn.execute("SELECT jwt_guard.authenticate(%s)", (token,))
            else:
                self.conn.execute("SELECT jwt_guard.authenticate(%s, %s)", (token, role))
            out = []
            for q in queries:
                cur = self.conn.execute(q)
                out.append(cur.fetchall() if cur.description else None)
            return out

    def accept(self, label, token, query, user, tenant, ids, role=None, extra=()):
        """The token is accepted: it becomes `user` with `tenant`, and `query` (first column)
        returns exactly `ids`. `extra` is [(sql, expected first value)]."""
        try:
            results = self.tx(token, [WHO, query] + [sql for sql, _ in extra], role)
        except psycopg.Error as e:
            raise Fail(f"{label}: refused with {e.sqlstate}: {e.diag.message_primary}") from None
        got_user, got_tenant, _ = results[0][0]
        expect(got_user == user, f"{label}: current_user is {got_user!r}, expected {user!r}")
        expect(got_tenant == tenant, f"{label}: tenant() is {got_tenant!r}, expected {tenant!r}")
        got_ids = [r[0] for r in results[1]]
        expect(got_ids == ids, f"{label}: rows {got_ids}, expected {ids}")
        for (sql, want), got in zip(extra, results[2:]):
            expect(got and got[0][0] == want, f"{label}: {sql} gave {got}, expected {want!r}")
        if VERBOSE:
            print(f"    accepted {label}: {got_user}, tenant {got_tenant}, rows {got_ids}")

    def refuse(self, label, token, sqlstate, role=None, contains=None, then=None):
        """authenticate() (or, with `then`, that statement after it) fails with `sqlstate`."""
        try:
            self.tx(token, [then] if then else [], role)
        except psycopg.Error as e:
            message = e.diag.message_primary or ""
            expect(e.sqlstate == sqlstate, f"{label}: SQLSTATE {e.sqlstate} ({message}), expected {sqlstate}")
            expect(contains is None or contains in message, f"{label}: message {message!r} lacks {contains!r}")
            if VERBOSE:
                print(f"    refused  {label}: {e.sqlstate} {message}")
            return
        raise Fail(f"{label}: accepted, expected SQLSTATE {sqlstate}")


# ------------------------------------------------------------------------------- key material

def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _int_b64u(n: int) -> str:
    return b64u(n.to_bytes((n.bit_length() + 7) // 8, "big"))


def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def rsa_members(key):
    nums = key.public_key().public_numbers()
    return {"n": _int_b64u(nums.n), "e": _int_b64u(nums.e)}


def certificate(key, cn):
    """A self-signed certificate, as providers publish in x5c and Firebase in its x509 map."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = datetime.datetime.now(datetime.timezone.utc)
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))


def x5c_members(key, cn, s256=False):
    der = certificate(key, cn).public_bytes(serialization.Encoding.DER)
    out = {"x5c": [base64.b64encode(der).decode()], "x5t": b64u(hashlib.sha1(der).digest())}
    if s256:
        out["x5t#S256"] = b64u(hashlib.sha256(der).digest())
    return out


def rand_id(n, alphabet=string.ascii_letters + string.digits):
    return "".join(secrets.choice(alphabet) for _ in range(n))


def pyjwt(key, claims, kid, alg="RS256", typ="JWT"):
    headers = {"kid": kid} if kid else {}
    headers["typ"] = typ  # None drops it (PyJWT adds typ JWT otherwise)
    return jwt.encode(claims, key, algorithm=alg, headers=headers)


# ------------------------------------------------------------------------------------ node jose

NODE_SCRIPT = r"""
// Reads {keys, tokens} on stdin; generates keys and signs tokens with jose; prints JSON.
const jose = require('jose');
let input = '';
process.stdin.on('data', d => { input += d; });
process.stdin.on('end', () => main().catch(e => { process.stderr.write(String((e && e.stack) || e)); process.exit(1); }));
async function main() {
  const spec = JSON.parse(input);
  const out = { jwk: {}, thumbprint: {}, tokens: {}, version: require('jose/package.json').version };
  const keys = {};
  for (const [name, k] of Object.entries(spec.keys)) {
    if (k.secret !== undefined) { keys[name] = new TextEncoder().encode(k.secret); continue; }
    const options = { extractable: true };
    if (/^(RS|PS)/.test(k.alg)) options.modulusLength = 2048;
    const { publicKey, privateKey } = await jose.generateKeyPair(k.alg, options);
    keys[name] = privateKey;
    out.jwk[name] = await jose.exportJWK(publicKey);            // no kid, no alg
    out.thumbprint[name] = await jose.calculateJwkThumbprint(out.jwk[name]);
  }
  for (const [name, t] of Object.entries(spec.tokens)) {
    const header = { ...t.header };
    if (t.kid_thumbprint_of) header.kid = out.thumbprint[t.kid_thumbprint_of];
    let b = new jose.SignJWT(t.claims).setProtectedHeader(header);
    if (t.iat !== undefined) b = t.iat === 'now' ? b.setIssuedAt() : b.setIssuedAt(t.iat);
    if (t.nbf !== undefined) b = b.setNotBefore(t.nbf);
    if (t.exp !== undefined) b = b.setExpirationTime(t.exp);
    out.tokens[name] = await b.sign(keys[t.key]);
  }
  process.stdout.write(JSON.stringify(out));
}
"""


class Jose:
    """node `jose` v5 in a directory of its own (installed with npm when missing)."""

    def __init__(self):
        self.dir, self.temporary, self.error = None, False, None

    def _usable(self, d):
        try:
            with open(os.path.join(d, "node_modules", "jose", "package.json")) as f:
                return json.load(f).get("version", "").startswith("5.")
        except (OSError, ValueError):
            return False

    def ensure(self):
        if self.dir or self.error:
            return
        for d in (os.environ.get("PROVIDERS_NODE_DIR"), HERE):
            if d and self._usable(d):
                self.dir = d
                break
        else:
            d = tempfile.mkdtemp(prefix="jwt_guard_jose_")
            try:
                proc = subprocess.run(["npm", "install", "--prefix", d, "--no-audit", "--no-fund", "--no-save",
                                       "--no-package-lock", "--loglevel=error", "jose@5"],
                                      capture_output=True, text=True, timeout=180)
                ok = proc.returncode == 0 and self._usable(d)
                detail = proc.stderr.strip()[-200:]
            except (OSError, subprocess.TimeoutExpired) as e:
                ok, detail = False, str(e)
            if not ok:
                shutil.rmtree(d, ignore_errors=True)
                self.error = f"npm install jose@5 failed: {detail}"
                return
            self.dir, self.temporary = d, True
        with open(os.path.join(self.dir, f"providers_mint_{os.getpid()}.js"), "w") as f:
            f.write(NODE_SCRIPT)

    def run(self, keys, tokens):
        self.ensure()
        if self.error:
            raise Fail(self.error)
        script = os.path.join(self.dir, f"providers_mint_{os.getpid()}.js")
        proc = subprocess.run(["node", script], input=json.dumps({"keys": keys, "tokens": tokens}),
                              capture_output=True, text=True, timeout=60, cwd=self.dir)
        if proc.returncode != 0:
            raise Fail(f"node jose failed: {proc.stderr.strip().splitlines()[-1:] or '?'}")
        out = json.loads(proc.stdout)
        expect(out["version"].startswith("5."), f"node jose is {out['version']}, expected 5.x")
        return out

    def cleanup(self):
        if self.dir:
            try:
                os.remove(os.path.join(self.dir, f"providers_mint_{os.getpid()}.js"))
            except OSError:
                pass
            if self.temporary:
                shutil.rmtree(self.dir, ignore_errors=True)


# ---------------------------------------------------------------------------------- providers

def check_auth0(ctx):
    iss, api, ns = "https://orders-demo.eu.auth0.com/", "https://api.orders.example", "https://orders.example"
    current, following = rsa_key(), rsa_key()
    kid_current, kid_next = rand_id(22), rand_id(22)
    jwks = {"keys": [
        {"alg": "RS256", "kty": "RSA", "use": "sig", **rsa_members(k), "kid": kid, **x5c_members(k, "orders-demo.eu.auth0.com")}
        for k, kid in ((current, kid_current), (following, kid_next))]}
    ctx.recipe("auth0", jwks=json.dumps(jwks))
    ctx.admin("INSERT INTO orders VALUES (1, 'acme', 'widget'), (2, 'acme', 'gadget'), "
              "(3, 'globex', 'sprocket'), (4, 'initech', 'stapler')")
    now = int(time.time())

    def token(roles, tenant, permissions, lifetime=86400, aud=(api, iss + "userinfo"), key=current, kid=kid_current):
        claims = {"iss": iss, "sub": f"auth0|{secrets.token_hex(12)}", "aud": list(aud) if len(aud) > 1 else aud[0],
                  "iat": now, "exp": now + lifetime, "azp": "Xq1exampleAuth0ClientId00000000",
                  "scope": "openid profile", "permissions": permissions}
        if roles is not None:
            claims[f"{ns}/roles"] = roles
        claims[f"{ns}/tenant_id"] = tenant
        return pyjwt(key, claims, kid)

    q = "SELECT id FROM orders ORDER BY id"
    with ctx.session() as conn:
        p = Probe(conn)
        admin = token(["Orders Admin"], "acme", ["read:orders", "create:orders", "delete:order-items"])
        p.accept("Orders Admin, 24 h token", admin, q, "app_admin", "acme", [1, 2],
                 extra=[("SELECT jwt_guard.can('delete:order-items')", True),
                        ("SELECT jwt_guard.can('update:orders')", False)])
        clerk = token(["Orders Clerk"], "globex", ["read:orders"], key=following, kid=kid_next)
        p.accept("Orders Clerk, next key", clerk, q, "app_user", "globex", [3])
        p.accept("without read:orders", token(["Orders Clerk"], "acme", ["create:orders"]), q, "app_user", "acme", [])
        p.refuse("insert for another tenant", clerk, "42501",
                 then="INSERT INTO orders VALUES (10, 'acme', 'smuggled')")
        p.refuse("userinfo audience only", token(["Orders Admin"], "acme", [], aud=(iss + "userinfo",)), "28000")
        p.refuse("unmapped role", token(["Support Agent"], "acme", []), "42501")
        p.refuse("empty roles array", token([], "acme", []), "28000")
        p.refuse("25 h token", token(["Orders Admin"], "acme", [], lifetime=90000), "28000")


def check_keycloak(ctx):
    iss = "https://sso.orders.example/realms/acme"
    sig, enc, sig2 = rsa_key(), rsa_key(), rsa_key()
    kid_sig, kid_enc, kid_sig2 = b64u(os.urandom(32)), b64u(os.urandom(32)), b64u(os.urandom(32))

    def jwk(key, kid, alg, use):
        return {"kid": kid, "kty": "RSA", "alg": alg, "use": use, **rsa_members(key), **x5c_members(key, "acme", s256=True)}

    jwks = {"keys": [jwk(sig, kid_sig, "RS256", "sig"), jwk(enc, kid_enc, "RSA-OAEP", "enc")]}
    out = ctx.recipe("keycloak", jwks=json.dumps(jwks))
    expect(re.search(rf"{re.escape(kid_enc)}\s*\|\s*skipped", out), "sync_jwks did not report the enc key as skipped")
    expect(re.search(rf"{re.escape(kid_sig)}\s*\|\s*added", out), "sync_jwks did not add the signing key")
    ctx.admin("INSERT INTO projects VALUES (1, 'acme', 'apollo'), (2, 'acme', 'gemini'), (3, 'globex', 'mercury')")
    now = int(time.time())

    def token(roles, tenant, aud=("orders-api", "account"), key=sig, kid=kid_sig):
        claims = {"exp": now + 300, "iat": now, "auth_time": now, "jti": str(uuid.uuid4()), "iss": iss,
                  "aud": list(aud) if len(aud) > 1 else aud[0], "sub": str(uuid.uuid4()), "typ": "Bearer",
                  "azp": "orders-web", "sid": str(uuid.uuid4()), "acr": "1", "scope": "openid profile email",
                  "realm_access": {"roles": roles},
                  "resource_access": {"account": {"roles": ["manage-account", "view-profile"]}},
                  "email_verified": True, "preferred_username": "user-" + secrets.token_hex(3),
                  "tenant_id": tenant}
        return pyjwt(key, claims, kid)

    q = "SELECT id FROM projects ORDER BY id"
    defaults = ["default-roles-acme", "offline_access", "uma_authorization"]
    with ctx.session() as conn:
        p = Probe(conn)
        alice = token(defaults + ["orders-user"], "acme")
        p.accept("orders-user", alice, q, "app_user", "acme", [1, 2])
        bob = token(["default-roles-acme", "orders-admin", "orders-user"], "globex")
        p.accept("orders-admin first", bob, q, "app_admin", "globex", [3])
        p.accept("orders-admin asking for app_user", bob, q, "app_user", "globex", [3], role="app_user")
        p.refuse("Keycloak's default roles only", token(defaults, "acme"), "42501")
        p.refuse("aud account only", token(defaults + ["orders-user"], "acme", aud=("account",)), "28000")
        p.refuse("multivalued tenant_id", token(defaults + ["orders-user"], ["acme", "globex"]), "28000")
        p.refuse("signed with the enc key", token(defaults + ["orders-user"], "acme", key=enc, kid=kid_enc), "28000")
        # Rotation: the realm publishes a new signing key and drops the old one.
        rotated = {"keys": [jwk(sig2, kid_sig2, "RS256", "sig"), jwk(enc, kid_enc, "RSA-OAEP", "enc")]}
        out = ctx.recipe("rotate", iss=iss, jwks=json.dumps(rotated))
        expect(re.search(rf"{re.escape(kid_sig)}\s*\|\s*retired", out), "rotation did not retire the old key")
        p.refuse("old key after rotation", alice, "28000", contains="retired")
        p.accept("new key after rotation", token(defaults + ["orders-user"], "acme", key=sig2, kid=kid_sig2),
                 q, "app_user", "acme", [1, 2])


ENTRA_CLIENT = "c11e0000-0000-4000-8000-0000000000c1"
ENTRA_A, ENTRA_B = "aaaaaaaa-0000-4000-8000-00000000000a", "bbbbbbbb-0000-4000-8000-00000000000b"


def entra_jwks():
    """Keys as login.microsoftonline.com/common/discovery/v2.0/keys lists them: no alg."""
    keys = [rsa_key(), rsa_key()]
    kids = [b64u(os.urandom(20)) for _ in keys]
    doc = {"keys": [{"kty": "RSA", "use": "sig", "kid": kid, **rsa_members(k), **x5c_members(k, "accounts.accesscontrol.windows.net"),
                     "cloud_instance_name": "microsoftonline.com",
                     "issuer": "https://login.microsoftonline.com/{tenantid}/v2.0"}
                    for k, kid in zip(keys, kids)]}
    for k in doc["keys"]:  # x5t doubles as kid in Entra's documents; keep the member order plausible
        k["x5t"] = k["kid"]
    return keys, kids, doc


def entra_token(key, kid, tid, roles, lifetime=4800, aud=ENTRA_CLIENT, groups=None):
    now = int(time.time())
    claims = {"aud": aud, "iss": f"https://login.microsoftonline.com/{tid}/v2.0", "iat": now, "nbf": now,
              "exp": now + lifetime, "aio": b64u(os.urandom(40)), "azp": "d0c0ffee-0000-4000-8000-0000000000d1",
              "azpacr": "0", "name": "Test User", "oid": str(uuid.uuid4()), "preferred_username": "user@example.test",
              "rh": "0.A" + b64u(os.urandom(30)), "scp": "Orders.Read", "sid": str(uuid.uuid4()),
              "sub": b64u(os.urandom(32)), "tid": tid, "uti": b64u(os.urandom(16)), "ver": "2.0"}
    if roles is not None:
        claims["roles"] = roles
    if groups is not None:
        claims["groups"] = groups
    return pyjwt(key, claims, kid)


def check_entra(ctx):
    keys, kids, jwks = entra_jwks()
    ctx.recipe("entra", jwks=json.dumps(jwks))
    ctx.admin("INSERT INTO documents VALUES (1, %s, 'a-plan'), (2, %s, 'a-budget'), (3, %s, 'b-plan')",
              (ENTRA_A, ENTRA_A, ENTRA_B))
    q = "SELECT id FROM documents ORDER BY id"
    with ctx.session() as conn:
        p = Probe(conn)
        p.accept("Orders.ReadWrite, 80 min", entra_token(keys[0], kids[0], ENTRA_A, ["Orders.ReadWrite"]),
                 q, "app_user", ENTRA_A, [1, 2])
        p.accept("App ID URI audience", entra_token(keys[0], kids[0], ENTRA_A, ["Orders.Admin"], aud="api://orders-api"),
                 q, "app_admin", ENTRA_A, [1, 2])
        big = entra_token(keys[1], kids[1], ENTRA_B, ["Orders.Read"], groups=[str(uuid.uuid4()) for _ in range(190)])
        expect(8192 < len(big) < 16384, f"the 190-group token is {len(big)} bytes, meant to be 8-16 kB")
        p.accept("Orders.Read, 190 groups", big, q, "app_reader", ENTRA_B, [3])
        p.refuse("tenant not onboarded",
                 entra_token(keys[0], kids[0], "cccccccc-0000-4000-8000-00000000000c", ["Orders.Read"]), "28000")
        p.refuse("Microsoft Graph audience", entra_token(keys[0], kids[0], ENTRA_A, ["Orders.Read"],
                                                         aud="00000003-0000-0000-c000-000000000000"), "28000")
        p.refuse("no app role", entra_token(keys[0], kids[0], ENTRA_A, None), "42501")
        p.refuse("100 min token", entra_token(keys[0], kids[0], ENTRA_A, ["Orders.Read"], lifetime=6000), "28000")
        huge = entra_token(keys[1], kids[1], ENTRA_B, ["Orders.Read"], groups=[str(uuid.uuid4()) for _ in range(450)])
        expect(len(huge) > 16384, f"the 450-group token is only {len(huge)} bytes")
        p.refuse("over 16384 bytes", huge, "28000")
        # Globex leaves: its tenant row, profile and keys go; Acme is untouched.
        ctx.recipe("entra-offboard", tid=ENTRA_B)
        p.refuse("offboarded tenant", big, "28000")
        p.accept("remaining tenant", entra_token(keys[0], kids[0], ENTRA_A, ["Orders.ReadWrite"]),
                 q, "app_user", ENTRA_A, [1, 2])


def check_sync_default_alg(ctx):
    """sql-reference: RSA keys without alg take default_alg (Entra ID publishes them so)."""
    iss = "https://login.microsoftonline.com/dddddddd-0000-4000-8000-00000000000d/v2.0"
    keys, kids, jwks = entra_jwks()
    ctx.admin("SELECT jwt_guard.set_issuer(%s, audience => ARRAY[%s], role_claim => 'roles', tenant_claim => 'tid', "
              "max_lifetime => '2 hours', role_map => '{\"Orders.ReadWrite\": \"app_user\"}')", (iss, ENTRA_CLIENT))
    rows = ctx.admin("SELECT kid, action, reason FROM jwt_guard.sync_jwks(%s, %s::jsonb, false, 'RS256')",
                     (iss, json.dumps(jwks)))
    expect(sorted(r[1] for r in rows) == ["added", "added"], f"sync_jwks gave {rows}")
    token = entra_token(keys[0], kids[0], "dddddddd-0000-4000-8000-00000000000d", ["Orders.ReadWrite"])
    with ctx.session() as conn:
        try:
            Probe(conn).accept("key stored with default_alg", token, "SELECT 1", "app_user",
                               "dddddddd-0000-4000-8000-00000000000d", [1])
        except Fail as e:
            raise Fail(str(e)) from None


GOOGLE_CLIENT = "123456789012-orders0demo0web.apps.googleusercontent.com"


def check_google(ctx):
    keys = [rsa_key(), rsa_key()]
    kids = [secrets.token_hex(20) for _ in keys]
    jwks = {"keys": [{"e": rsa_members(k)["e"], "kty": "RSA", "use": "sig", "n": rsa_members(k)["n"],
                      "alg": "RS256", "kid": kid} for k, kid in zip(keys, kids)]}
    ctx.shared["google"] = (keys[0], kids[0])
    ctx.recipe("google", jwks=json.dumps(jwks))
    ctx.admin("INSERT INTO notes VALUES (1, 'acme.example', 'a1'), (2, 'acme.example', 'a2'), (3, 'globex.example', 'g1')")
    now = int(time.time())

    def token(hd, iss="https://accounts.google.com", aud=GOOGLE_CLIENT, lifetime=3600, key=keys[0], kid=kids[0]):
        user = "u" + secrets.token_hex(3)
        claims = {"iss": iss, "azp": aud, "aud": aud, "sub": str(secrets.randbelow(10 ** 21)),
                  "email": f"{user}@{hd or 'gmail.example'}", "email_verified": True,
                  "at_hash": b64u(os.urandom(16)), "name": user, "given_name": user,
                  "picture": "https://lh3.googleusercontent.example/a/x", "iat": now, "exp": now + lifetime}
        if hd:
            claims["hd"] = hd
        return pyjwt(key, claims, kid)

    q = "SELECT id FROM notes ORDER BY id"
    with ctx.session() as conn:
        p = Probe(conn)
        p.accept("Workspace acme.example", token("acme.example"), q, "app_reader", "acme.example", [1, 2])
        p.accept("iss without https://", token("globex.example", iss="accounts.google.com", key=keys[1], kid=kids[1]),
                 q, "app_reader", "globex.example", [3])
        p.accept("consumer account, no hd", token(None), q, "app_reader", None, [])
        p.refuse("another OAuth client", token("acme.example", aud="987654321098-other.apps.googleusercontent.com"),
                 "28000")
        p.refuse("another key under Google's kid", token("acme.example", key=rsa_key()), "28000")
        p.refuse("2 h token", token("acme.example", lifetime=7200), "28000")


def check_firebase(ctx):
    project = "orders-demo-5f3a2"
    iss = f"https://securetoken.google.com/{project}"
    keys = [rsa_key() for _ in range(3)]
    kids = [secrets.token_hex(20) for _ in keys]
    pem = [certificate(k, "securetoken.system.gserviceaccount.com").public_bytes(serialization.Encoding.PEM).decode()
           for k in keys]
    ctx.recipe("firebase")
    ctx.recipe("firebase-keys", certs=json.dumps({kids[0]: pem[0], kids[1]: pem[1]}))
    ctx.admin("INSERT INTO chats VALUES (1, 'orders-acme-a1b2c', 'hi'), (2, 'orders-acme-a1b2c', 'yo'), "
              "(3, 'orders-globex-d3e4f', 'hey')")
    now = int(time.time())

    def token(tenant, db_role=None, aud=project, key=keys[0], kid=kids[0]):
        uid = rand_id(28)
        claims = {"iss": iss, "aud": aud, "auth_time": now - 60, "user_id": uid, "sub": uid, "iat": now,
                  "exp": now + 3600, "email": f"{uid.lower()}@example.test", "email_verified": True,
                  "firebase": {"identities": {"email": [f"{uid.lower()}@example.test"]},
                               "sign_in_provider": "password", "tenant": tenant}}
        if db_role:
            claims["db_role"] = db_role
        return pyjwt(key, claims, kid)

    q = "SELECT id FROM chats ORDER BY id"
    google_key, google_kid = ctx.shared.get("google") or (rsa_key(), secrets.token_hex(20))
    with ctx.session() as conn:
        p = Probe(conn)
        first = token("orders-acme-a1b2c", db_role="app_admin")
        p.accept("db_role app_admin", first, q, "app_admin", "orders-acme-a1b2c", [1, 2])
        p.accept("no custom claim", token("orders-globex-d3e4f", key=keys[1], kid=kids[1]),
                 q, "app_user", "orders-globex-d3e4f", [3])
        p.refuse("another project", token("orders-acme-a1b2c", aud="other-project-0000"), "28000")
        p.refuse("db_role admin", token("orders-acme-a1b2c", db_role="admin"), "42501")
        p.refuse("signed with a Google OIDC key", token("orders-acme-a1b2c", key=google_key, kid=google_kid), "28000")
        # Google rotates the certificates: the first one leaves the map, a third one joins.
        ctx.recipe("firebase-keys", certs=json.dumps({kids[1]: pem[1], kids[2]: pem[2]}))
        p.refuse("retired certificate", first, "28000", contains="retired")
        p.accept("new certificate", token("orders-acme-a1b2c", key=keys[2], kid=kids[2]),
                 q, "app_user", "orders-acme-a1b2c", [1, 2])


COGNITO_ISS = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Orders1Ab"
COGNITO_CLIENT, COGNITO_OTHER = "4f1example0client0ids0abcd", "7k2example0other0client0xy"


def cognito_tokens(ctx):
    key, kid = ctx.shared["cognito"]
    now = int(time.time())

    def common(user, groups, tenant):
        claims = {"sub": str(uuid.uuid4()), "iss": COGNITO_ISS, "origin_jti": str(uuid.uuid4()),
                  "event_id": str(uuid.uuid4()), "auth_time": now, "exp": now + 3600, "iat": now,
                  "jti": str(uuid.uuid4()), "custom:tenant_id": tenant}
        if groups is not None:
            claims["cognito:groups"] = groups
        return claims

    def id_token(user, groups, tenant, aud=COGNITO_CLIENT):
        claims = common(user, groups, tenant)
        claims.update({"email_verified": True, "cognito:username": user, "aud": aud, "token_use": "id",
                       "email": f"{user}@example.test"})
        return pyjwt(key, claims, kid, typ=None)

    def access_token(user, groups, tenant, client=COGNITO_CLIENT):
        claims = common(user, groups, tenant)
        claims.update({"version": 2, "client_id": client, "token_use": "access",
                       "scope": "aws.cognito.signin.user.admin", "username": user})
        return pyjwt(key, claims, kid, typ=None)

    return id_token, access_token


def check_cognito_id(ctx):
    keys = [rsa_key(), rsa_key()]
    kids = [base64.b64encode(os.urandom(32)).decode() for _ in keys]
    ctx.shared["cognito"] = (keys[0], kids[0])
    jwks = {"keys": [{"alg": "RS256", "e": rsa_members(k)["e"], "kid": kid, "kty": "RSA", "n": rsa_members(k)["n"],
                      "use": "sig"} for k, kid in zip(keys, kids)]}
    ctx.recipe("cognito", jwks=json.dumps(jwks))
    ctx.admin("INSERT INTO invoices VALUES (1, 'acme', 100), (2, 'acme', 250), (3, 'globex', 75)")
    ctx.recipe("cognito-id")
    id_token, access_token = cognito_tokens(ctx)
    q = "SELECT id FROM invoices ORDER BY id"
    with ctx.session() as conn:
        p = Probe(conn)
        p.accept("ID token, orders-users", id_token("alice", ["orders-users"], "acme"), q, "app_user", "acme", [1, 2])
        p.refuse("access token (no aud)", access_token("alice", ["orders-users"], "acme"), "28000")
        p.refuse("ID token of another app client", id_token("alice", ["orders-users"], "acme", aud=COGNITO_OTHER),
                 "28000")


def check_cognito_access(ctx):
    expect("cognito" in ctx.shared, "needs the cognito block, which the cognito-id check runs")
    ctx.recipe("cognito-access")
    id_token, access_token = cognito_tokens(ctx)
    q = "SELECT id FROM invoices ORDER BY id"
    with ctx.session() as conn:
        p = Probe(conn)
        bob = access_token("bob", ["orders-admins", "orders-users"], "globex")
        p.accept("access token, orders-admins first", bob, q, "app_admin", "globex", [3])
        p.accept("asking for app_user", bob, q, "app_user", "globex", [3], role="app_user")
        p.accept("another app client of the pool", access_token("eve", ["orders-users"], "acme", client=COGNITO_OTHER),
                 q, "app_user", "acme", [])
        p.refuse("ID token (aud)", id_token("alice", ["orders-users"], "acme"), "28000")
        p.refuse("in no group", access_token("carol", None, "acme"), "42501")


def check_okta(ctx):
    iss, org_iss = "https://orders-demo.okta.com/oauth2/default", "https://orders-demo.okta.com"
    kid, org_kid = b64u(os.urandom(32)), b64u(os.urandom(32))
    now = int(time.time())

    def spec(groups, tenant, scp=("openid", "tickets.read"), key="okta", k=kid, issuer=iss, aud="api://default",
             iat="now", exp="1h"):
        claims = {"ver": 1, "jti": "AT." + b64u(os.urandom(30)), "iss": issuer, "aud": aud,
                  "cid": "0oaexampleclientid0x7", "uid": "00u" + rand_id(17), "scp": list(scp), "auth_time": now,
                  "sub": f"{rand_id(6).lower()}@example.test", "groups": groups, "tenant_id": tenant}
        return {"key": key, "header": {"kid": k, "alg": "RS256"}, "claims": claims, "iat": iat, "exp": exp}

    out = ctx.jose.run({"okta": {"alg": "RS256"}, "okta_org": {"alg": "RS256"}}, {
        "alice": spec(["Everyone", "Orders-Users"], "acme"),
        "bob": spec(["Everyone", "Orders-Admins"], "globex"),
        "carol": spec(["Everyone", "Orders-Users"], "acme", scp=("openid",)),
        "everyone": spec(["Everyone"], "acme"),
        "org_server": spec(["Everyone", "Orders-Users"], "acme", key="okta_org", k=org_kid, issuer=org_iss, aud=org_iss),
        "expired": spec(["Everyone", "Orders-Users"], "acme", iat=now - 7200, exp=now - 3600),
    })
    jwk = out["jwk"]["okta"]
    jwks = {"keys": [{"kty": "RSA", "alg": "RS256", "kid": kid, "use": "sig", "e": jwk["e"], "n": jwk["n"]}]}
    ctx.recipe("okta", jwks=json.dumps(jwks))
    ctx.admin("INSERT INTO tickets VALUES (1, 'acme', 'login broken'), (2, 'acme', 'slow page'), (3, 'globex', 'refund')")
    t = out["tokens"]
    q = "SELECT id FROM tickets ORDER BY id"
    with ctx.session() as conn:
        p = Probe(conn)
        p.accept("Orders-Users", t["alice"], q, "app_user", "acme", [1, 2])
        p.accept("Orders-Admins", t["bob"], q, "app_admin", "globex", [3])
        p.accept("without tickets.read", t["carol"], q, "app_user", "acme", [])
        p.refuse("only Everyone", t["everyone"], "42501")
        p.refuse("org authorization server", t["org_server"], "28000")
        p.refuse("expired", t["expired"], "28000")


def check_supabase(ctx):
    ref = "abcdefghijklmnopqrst"
    iss = f"https://{ref}.supabase.co/auth/v1"
    secret, wrong = rand_id(40), rand_id(40)
    es_kid = str(uuid.uuid4())
    users = {"u1": str(uuid.uuid4()), "u2": str(uuid.uuid4()), "u3": str(uuid.uuid4())}
    now = int(time.time())

    def user_claims(sub, tenant, role="authenticated"):
        return {"iss": iss, "aud": "authenticated", "sub": sub, "email": f"{sub[:8]}@example.test", "phone": "",
                "app_metadata": {"provider": "email", "providers": ["email"], "tenant_id": tenant},
                "user_metadata": {"tenant_id": "globex"},  # user-writable: must not be the tenant
                "role": role, "aal": "aal1", "amr": [{"method": "password", "timestamp": now}],
                "session_id": str(uuid.uuid4()), "is_anonymous": False}

    legacy_header = {"alg": "HS256", "typ": "JWT"}
    out = ctx.jose.run({"legacy": {"secret": secret}, "wrong": {"secret": wrong}, "signing": {"alg": "ES256"}}, {
        "u1": {"key": "legacy", "header": legacy_header, "claims": user_claims(users["u1"], "acme"), "iat": "now", "exp": "1h"},
        "u2": {"key": "signing", "header": {"alg": "ES256", "kid": es_kid, "typ": "JWT"},
               "claims": user_claims(users["u2"], "acme"), "iat": "now", "exp": "1h"},
        "wrong": {"key": "wrong", "header": legacy_header, "claims": user_claims(users["u1"], "acme"), "iat": "now", "exp": "1h"},
        "anon": {"key": "legacy", "header": legacy_header, "claims": {"iss": "supabase", "ref": ref, "role": "anon"},
                 "iat": now - 86400, "exp": now + 10 * 365 * 86400},
        "service_key": {"key": "legacy", "header": legacy_header,
                        "claims": {"iss": "supabase", "ref": ref, "role": "service_role"},
                        "iat": now - 86400, "exp": now + 10 * 365 * 86400},
        "service": {"key": "legacy", "header": legacy_header,
                    "claims": user_claims(users["u1"], "acme", role="service_role"), "iat": "now", "exp": "1h"},
    })
    jwk = out["jwk"]["signing"]
    jwks = {"keys": [{"alg": "ES256", "crv": "P-256", "ext": True, "key_ops": ["verify"], "kid": es_kid, "kty": "EC",
                      "use": "sig", "x": jwk["x"], "y": jwk["y"]}]}
    ctx.recipe("supabase", jwt_secret=secret, jwks=json.dumps(jwks))
    ctx.admin("INSERT INTO todos VALUES (1, 'acme', %s, 'a'), (2, 'acme', %s, 'b'), (3, 'acme', %s, 'c'), "
              "(4, 'globex', %s, 'd')", (users["u1"], users["u1"], users["u2"], users["u3"]))
    t = out["tokens"]
    q = "SELECT id FROM todos ORDER BY id"
    with ctx.session() as conn:
        p = Probe(conn)
        p.accept("legacy HS256, no kid", t["u1"], q, "authenticated", "acme", [1, 2])
        p.accept("ES256 signing key", t["u2"], q, "authenticated", "acme", [3])
        p.refuse("another secret", t["wrong"], "28000")
        p.refuse("anon API key", t["anon"], "28000")
        p.refuse("service_role API key", t["service_key"], "28000")
        p.refuse("role service_role", t["service"], "42501")
        rows = ctx.admin("SELECT kid, action FROM jwt_guard.sync_jwks(%s, %s::jsonb, retire_missing => true)",
                         (iss, json.dumps(jwks)))
        expect(("supabase-legacy-jwt-secret", "retired") in rows,
               f"retire_missing did not retire the add_key secret: {rows}")
        p.refuse("legacy secret after retire_missing", t["u1"], "28000")


CLERK_ORG_A, CLERK_ORG_B = "org_2exampleAcmeOrg00000000000", "org_2exampleGlobexOrg000000000"


def clerk_tokens(ctx):
    if "clerk" in ctx.shared:
        return ctx.shared["clerk"]
    v2, v1 = "https://clerk.orders.example", "https://orders-demo-42.clerk.accounts.dev"
    kid2, kid1 = "ins_2" + rand_id(22), "ins_2" + rand_id(22)
    now = int(time.time())

    def base(iss, extra):
        claims = {"azp": "https://orders.example", "fva": [3, -1], "iss": iss, "jti": secrets.token_hex(10),
                  "sid": "sess_2" + rand_id(22), "sub": "user_2" + rand_id(22)}
        claims.update(extra)
        return claims

    def v2_spec(org=None, **extra):
        claims = base(v2, {"v": 2, **extra})
        if org:
            claims["o"] = {"id": org[0], "rol": org[1], "slg": org[2], "per": "read,manage", "fpm": "3"}
        return {"key": "v2", "header": {"alg": "RS256", "kid": kid2, "typ": "JWT"}, "claims": claims,
                "iat": now, "nbf": now - 5, "exp": now + 60}

    def v1_spec(org, key="v1", kid=kid1):
        claims = base(v1, {"org_id": org[0], "org_role": org[1], "org_slug": org[2], "org_permissions": []})
        return {"key": key, "header": {"alg": "RS256", "kid": kid, "typ": "JWT"}, "claims": claims,
                "iat": now, "nbf": now - 5, "exp": now + 60}

    out = ctx.jose.run({"v2": {"alg": "RS256"}, "v1": {"alg": "RS256"}}, {
        "admin": v2_spec((CLERK_ORG_A, "admin", "acme")),
        "member": v2_spec((CLERK_ORG_B, "member", "globex")),
        "no_org": v2_spec(),
        "template": v2_spec((CLERK_ORG_A, "admin", "acme"), aud="convex"),
        "billing": v2_spec((CLERK_ORG_A, "billing", "acme")),
        "v1_admin": v1_spec((CLERK_ORG_A, "org:admin", "acme")),
        "v1_billing": v1_spec((CLERK_ORG_B, "org:billing", "globex")),
        "v1_forged": v1_spec((CLERK_ORG_A, "org:admin", "acme"), key="v2", kid=kid2),
    })

    def jwks(name, kid):
        jwk = out["jwk"][name]
        return json.dumps({"keys": [{"use": "sig", "kty": "RSA", "kid": kid, "alg": "RS256", "n": jwk["n"], "e": jwk["e"]}]})

    ctx.shared["clerk"] = (out["tokens"], jwks("v2", kid2), jwks("v1", kid1))
    return ctx.shared["clerk"]


def check_clerk(ctx):
    t, jwks_v2, _ = clerk_tokens(ctx)
    ctx.recipe("clerk", jwks=jwks_v2)
    ctx.admin("INSERT INTO boards VALUES (1, %s, 'roadmap'), (2, %s, 'bugs'), (3, %s, 'launch')",
              (CLERK_ORG_A, CLERK_ORG_A, CLERK_ORG_B))
    q = "SELECT id FROM boards ORDER BY id"
    with ctx.session() as conn:
        p = Probe(conn)
        p.accept("v2 admin", t["admin"], q, "app_admin", CLERK_ORG_A, [1, 2])
        p.accept("v2 member", t["member"], q, "app_user", CLERK_ORG_B, [3])
        p.accept("no active organization", t["no_org"], q, "app_reader", None, [])
        p.refuse("JWT template token with aud", t["template"], "28000")
        p.refuse("unmapped role billing", t["billing"], "42501")


def check_clerk_v1(ctx):
    expect(ctx.shared.get("clerk"), "needs the clerk check's keys")
    t, _, jwks_v1 = clerk_tokens(ctx)
    ctx.recipe("clerk-v1", jwks=jwks_v1)
    q = "SELECT id FROM boards ORDER BY id"
    with ctx.session() as conn:
        p = Probe(conn)
        p.accept("v1 org:admin", t["v1_admin"], q, "app_admin", CLERK_ORG_A, [1, 2])
        p.refuse("unmapped org:billing", t["v1_billing"], "42501")
        p.refuse("v1 claims, v2 instance's key", t["v1_forged"], "28000")


def check_hasura(ctx):
    iss = "https://auth.orders.example"
    ns = "https://hasura.io/jwt/claims"

    def spec(allowed, org, kid=True, stringified=False, key="hasura"):
        inner = {"x-hasura-allowed-roles": allowed, "x-hasura-default-role": allowed[0],
                 "x-hasura-user-id": "u-" + secrets.token_hex(2), "x-hasura-org-id": org}
        claims = {ns: json.dumps(inner) if stringified else inner, "iss": iss, "aud": "orders-graphql",
                  "sub": inner["x-hasura-user-id"]}
        s = {"key": key, "header": {"alg": "ES256", "typ": "JWT"}, "claims": claims, "iat": "now", "exp": "15m"}
        if kid:
            s["kid_thumbprint_of"] = key
        return s

    out = ctx.jose.run({"hasura": {"alg": "ES256"}, "hasura2": {"alg": "ES256"}}, {
        "both": spec(["user", "manager"], "org-acme"),
        "no_kid": spec(["user"], "org-globex", kid=False),
        "user_only": spec(["user"], "org-acme"),
        "stringified": spec(["user", "manager"], "org-acme", stringified=True),
    })

    def published(name):
        return {**out["jwk"][name], "kid": out["thumbprint"][name], "alg": "ES256", "use": "sig"}

    ctx.recipe("hasura", jwks=json.dumps({"keys": [published("hasura")]}))
    ctx.admin("INSERT INTO issues VALUES (1, 'org-acme', 'i1'), (2, 'org-acme', 'i2'), (3, 'org-globex', 'i3')")
    t = out["tokens"]
    q = "SELECT id FROM issues ORDER BY id"
    with ctx.session() as conn:
        p = Probe(conn)
        p.accept("first allowed role", t["both"], q, "app_user", "org-acme", [1, 2])
        p.accept("asking for app_admin", t["both"], q, "app_admin", "org-acme", [1, 2], role="app_admin")
        p.refuse("asking for the Hasura name manager", t["both"], "42501", role="manager")
        p.accept("no kid, one key", t["no_kid"], q, "app_user", "org-globex", [3])
        p.refuse("app_admin not allowed", t["user_only"], "42501", role="app_admin")
        # The role claim's pointer runs through a string: the wrong type, not an absent claim.
        p.refuse("stringified_json claims", t["stringified"], "28000")
        ctx.recipe("rotate", iss=iss, jwks=json.dumps({"keys": [published("hasura"), published("hasura2")]}))
        p.refuse("no kid, two keys", t["no_kid"], "28000")
        p.accept("kid, two keys", t["both"], q, "app_user", "org-acme", [1, 2])


def check_sync_thumbprint(ctx):
    """sql-reference: a JWK without kid (jose exportJWK()) gets its RFC 7638 thumbprint as kid;
    tokens without a kid find it by issuer and algorithm."""
    iss = "https://keys.orders.example"
    claims = {"iss": iss, "aud": "orders-graphql", "sub": "u-1", "role": "app_user", "tenant_id": "acme"}
    out = ctx.jose.run({"bare": {"alg": "ES256"}}, {
        "kid": {"key": "bare", "header": {"alg": "ES256"}, "kid_thumbprint_of": "bare", "claims": claims,
                "iat": "now", "exp": "10m"},
        "no_kid": {"key": "bare", "header": {"alg": "ES256"}, "claims": claims, "iat": "now", "exp": "10m"},
    })
    jwk = out["jwk"]["bare"]
    expect("kid" not in jwk and "alg" not in jwk, f"exportJWK() gave members {sorted(jwk)}")
    ctx.admin("SELECT jwt_guard.set_issuer(%s, audience => ARRAY['orders-graphql'])", (iss,))
    rows = ctx.admin("SELECT kid, action FROM jwt_guard.sync_jwks(%s, %s::jsonb)", (iss, json.dumps({"keys": [jwk]})))
    expect(rows == [(out["thumbprint"]["bare"], "added")], "sync_jwks did not store the key under jose's thumbprint")
    with ctx.session() as conn:
        p = Probe(conn)
        try:
            p.accept("kid = thumbprint", out["tokens"]["kid"], "SELECT 1", "app_user", "acme", [1])
            p.accept("no kid", out["tokens"]["no_kid"], "SELECT 1", "app_user", "acme", [1])
        except Fail as e:
            raise Fail(str(e)) from None


def check_drop_issuer(ctx):
    """sql-reference, drop_issuer: its keys stay bound to it; unless pg_jwt_guard.issuers lists
    the issuer, its tokens are refused from then on."""
    iss = "https://dropped.orders.example"
    key, kid = rsa_key(), "dropped-1"
    ctx.admin("SELECT jwt_guard.set_issuer(%s, audience => '{}')", (iss,))
    ctx.admin("SELECT * FROM jwt_guard.sync_jwks(%s, %s::jsonb)",
              (iss, json.dumps({"keys": [{"kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig", **rsa_members(key)}]})))
    now = int(time.time())
    token = pyjwt(key, {"iss": iss, "sub": "u-1", "role": "app_user", "tenant_id": "acme", "iat": now,
                        "exp": now + 600}, kid)
    listed = ctx.admin("SHOW pg_jwt_guard.issuers")[0][0]
    expect(iss not in listed, f"pg_jwt_guard.issuers lists {iss}")
    with ctx.session() as conn:
        p = Probe(conn)
        p.accept("with its profile", token, "SELECT 1", "app_user", "acme", [1])
        expect(ctx.admin("SELECT jwt_guard.drop_issuer(%s)", (iss,)) == [(True,)], "drop_issuer found no profile")
        try:
            p.refuse("after drop_issuer", token, "28000")
        except Fail as e:
            raise Fail(str(e)) from None


def check_recipes_covered(ctx):
    missing = sorted(set(ctx.recipes) - ctx.ran)
    expect(not missing, f"recipe blocks no check ran: {missing}")


CHECKS = [
    ("auth0", check_auth0),
    ("keycloak", check_keycloak),
    ("entra", check_entra),
    ("google", check_google),
    ("firebase", check_firebase),
    ("cognito-id", check_cognito_id),
    ("cognito-access", check_cognito_access),
    ("okta", check_okta),
    ("supabase", check_supabase),
    ("clerk", check_clerk),
    ("clerk-v1", check_clerk_v1),
    ("hasura", check_hasura),
    ("sync_jwks-default_alg", check_sync_default_alg),
    ("sync_jwks-thumbprint-kid", check_sync_thumbprint),
    ("drop_issuer-stops-issuer", check_drop_issuer),
    ("recipes-covered", check_recipes_covered),
]


def run(env=None, minters=None):
    """Runs every check; returns [(name, None or one-line reason)]. env and minters (the suite's
    fixtures) are not needed: every key here is generated for this run."""
    results = []

    def report(name, fn, *args):
        started = time.time()
        try:
            fn(*args)
            problem = None
        except Fail as e:
            problem = str(e)
        except Exception as e:  # noqa: BLE001 - any other failure is a failure of this check
            problem = f"raised {type(e).__name__}: {str(e)[:300]}"
        if problem is None:
            print(f"provider {name:28s} ... ok ({time.time() - started:.1f} s)", flush=True)
        else:
            print(f"provider {name:28s} ... FAILED: {problem}", flush=True)
        results.append((name, problem))

    jose = Jose()
    cluster = None
    try:
        recipes = load_recipes()
        cluster = ProviderCluster()
        conf = recipes.get("postgresql.conf", "")
        cluster.start(preload=True, extra=conf + "log_min_messages = warning\n")
        ctx = Ctx(cluster, recipes, jose)
        ctx.ran.add("postgresql.conf")
        ctx.recipe("common")
    except Exception as e:  # noqa: BLE001 - the cluster or the common recipe failed: one failure
        problem = str(e) if isinstance(e, Fail) else f"{type(e).__name__}: {str(e)[:300]}"
        print(f"provider {'setup':28s} ... FAILED: {problem}", flush=True)
        results.append(("setup", problem))
        ctx = None
    try:
        if ctx is not None:
            for name, fn in CHECKS:
                report(name, fn, ctx)
    finally:
        if cluster is not None:
            try:
                cluster.stop()
            except Exception as e:  # noqa: BLE001
                print(f"provider: could not stop the cluster: {e}")
            cluster.remove()
        jose.cleanup()
    return results


def run_all(env, minters):
    results = run(env, minters)
    failed = sum(1 for _, problem in results if problem)
    return len(results) - failed, failed


if __name__ == "__main__":
    import fixtures  # noqa: E402,F401 - same entry point as the suite

    fixture_env, fixture_minters = fixtures.build()
    started = time.time()
    passed, failed = run_all(fixture_env, fixture_minters)
    print(f"providers: {time.time() - started:.1f} s")
    print(f"{passed} passed, {failed} failed")
    sys.exit(0 if failed == 0 else 1)

"""Remote JWKS: the background worker that keeps each issuer's keys in line with its jwks_uri.

A throw-away cluster (port 58480, pg_jwt_guard preloaded) and two HTTPS servers on 127.0.0.1,
both started here: one with a certificate from a test CA that the cluster trusts through
pg_jwt_guard.jwks_ca_file, one from a CA it does not know. Both CAs are made by this test at
run time; nothing leaves the machine. The trusted server's answer is set per check: the
current document, an HTTP error, a body that is not JSON, one over the size cap, one slower
than the time cap, an empty key set.

Checks: first fetch; zero-touch rotation after a token with an unknown kid; rate limit of
such refetches; retirement only after the grace period; failed fetches keep the last good
keys and never add one; a changed key under a known kid is never taken; shared secrets are
never taken; untrusted certificates are refused; issuers without jwks_uri never cause a
fetch; the periodic refresh; a database whose last jwks_uri is dropped loses its worker (so
DROP DATABASE works); and the launcher fetching at server start with no token.

Interface: run_all(env, minters) -> (passed, failed); one line per check.
Run on its own: python3 tests/tools/remote_jwks.py (as root).
"""

import base64
import datetime
import http.server
import ipaddress
import json
import os
import pwd
import secrets
import ssl
import sys
import threading
import time
import uuid

import jwt
import psycopg
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import scenarios  # noqa: E402

ISS = "https://idp.remote.test/"
OTHER_ISS = "https://untrusted.remote.test/"
AUD = "orders-api"
SETTLE = 25  # seconds a check waits at most for the worker to act


class RemoteCluster(scenarios.Cluster):
    port = 58480


class Fail(Exception):
    pass


def expect(cond, message):
    if not cond:
        raise Fail(message)


def b64u(n: int) -> str:
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def jwk(key, kid, **extra):
    nums = key.public_key().public_numbers()
    out = {"kty": "RSA", "kid": kid, "use": "sig", "n": b64u(nums.n), "e": b64u(nums.e)}
    out.update(extra)
    return out


def make_ca(name):
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    return key, cert


def make_server_cert(ca_key, ca_cert):
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    return key, cert


class JwksServer:
    """HTTPS on 127.0.0.1: serves `doc` as JSON, or misbehaves as `mode` says; counts requests."""

    def __init__(self, workdir, name, ca_key, ca_cert):
        self.doc = {"keys": []}
        self.mode = "ok"
        self.hits = 0
        key, cert = make_server_cert(ca_key, ca_cert)
        certfile = os.path.join(workdir, f"{name}.crt")
        keyfile = os.path.join(workdir, f"{name}.key")
        with open(certfile, "wb") as f:
            f.write(cert.public_bytes(serialization.Encoding.PEM))
        with open(keyfile, "wb") as f:
            f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                outer.hits += 1
                mode = outer.mode
                if mode == "slow":
                    time.sleep(4)
                if mode == "status500":
                    self.send_response(500)
                    self.end_headers()
                    return
                body = {
                    "garbage": b"<html>down for maintenance</html>",
                    "huge": json.dumps({"keys": outer.doc["keys"], "pad": "x" * 200_000}).encode(),
                    "empty": b'{"keys": []}',
                }.get(mode, json.dumps(outer.doc).encode())
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except OSError:
                    pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(certfile, keyfile)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.httpd.server_address[1]}/.well-known/jwks.json?api-key=do-not-log-me"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()


class Ctx:
    def __init__(self, cluster, server, rogue):
        self.c, self.server, self.rogue = cluster, server, rogue
        self.keys = {}

    def key(self, kid):
        if kid not in self.keys:
            self.keys[kid] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return self.keys[kid]

    def publish(self, *kids, extra=()):
        self.server.doc = {"keys": [jwk(self.key(k), k) for k in kids] + list(extra)}

    def token(self, kid, iss=ISS, key=None):
        now = int(time.time())
        claims = {"iss": iss, "aud": AUD, "sub": str(uuid.uuid4()), "role": "app_user", "tenant_id": "acme",
                  "iat": now, "exp": now + 600}
        return jwt.encode(claims, key or self.key(kid), algorithm="RS256", headers={"kid": kid})

    def admin(self, sql, params=()):
        with self.c.connect() as conn:
            cur = conn.execute(sql, params)
            return cur.fetchall() if cur.description else []

    def authenticate(self, token):
        """'ok' and the role, or the SQLSTATE of the refusal."""
        with psycopg.connect(host=self.c.dir, port=self.c.port, user="authenticator", dbname="postgres") as conn:
            try:
                conn.execute("SELECT jwt_guard.authenticate(%s)", (token,))
                return "ok:" + conn.execute("SELECT current_user::text").fetchone()[0]
            except psycopg.Error as e:
                return e.sqlstate

    def key_state(self, kid, iss=ISS):
        rows = self.admin("SELECT status, unpublished_since IS NOT NULL, fingerprint FROM jwt_guard.keys "
                          "WHERE kid = %s AND issuer = %s", (kid, iss))
        return rows[0] if rows else None

    def status(self, iss=ISS):
        return self.admin("SELECT jwks_attempted, jwks_fetched, jwks_error, jwks_keys FROM jwt_guard.issuers "
                          "WHERE iss = %s", (iss,))[0]

    def wait(self, what, predicate, timeout=SETTLE):
        deadline = time.time() + timeout
        while time.time() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.2)
        raise Fail(f"timed out after {timeout} s waiting for {what}")

    def refetch(self, iss=ISS):
        """Asks for a fetch now and waits until it has been made; returns the status row."""
        before = self.status(iss)[0]
        self.admin("SELECT jwt_guard.refresh_jwks()")
        return self.wait("a fetch", lambda: (s := self.status(iss)) and s[0] != before and s)

    def reload(self, **settings):
        for name, value in settings.items():
            self.admin(f"ALTER SYSTEM SET pg_jwt_guard.{name} = '{value}'")
        self.admin("SELECT pg_reload_conf()")
        time.sleep(1.5)  # the worker takes the reload at its next wake-up (at most 1 s)


def setup(c, ca_file):
    with c.connect() as conn:
        conn.execute("CREATE EXTENSION pg_jwt_guard")
        conn.execute("CREATE ROLE authenticator LOGIN NOINHERIT")
        conn.execute("CREATE ROLE app_user NOLOGIN")


def check_first_fetch(x):
    x.publish("a")
    x.admin("SELECT jwt_guard.set_issuer(%s, audience => ARRAY[%s], jwks_uri => %s)", (ISS, AUD, x.server.url))
    x.wait("key a", lambda: x.key_state("a"))
    expect(x.key_state("a")[0] == "active", f"key a is {x.key_state('a')}")
    got = x.authenticate(x.token("a"))
    expect(got == "ok:app_user", f"token signed by the fetched key: {got}")
    attempted, fetched, error, keys = x.status()
    expect(fetched is not None and error is None and keys == 1, f"issuers view: {(fetched, error, keys)}")
    workers = x.admin("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_jwt_guard jwks worker'")
    expect(workers[0][0] == 1, f"{workers[0][0]} jwks workers in pg_stat_activity")


def check_rotation_on_unknown_kid(x):
    x.publish("a", "b")
    hits = x.server.hits
    first = x.authenticate(x.token("b"))
    expect(first == "28000", f"a kid not yet fetched must be refused first, got {first}")
    x.wait("token b accepted", lambda: x.authenticate(x.token("b")) == "ok:app_user")
    expect(x.server.hits > hits, "no fetch was made")


def check_refetch_rate_limit(x):
    x.reload(jwks_min_interval=60)
    try:
        time.sleep(1)
        hits = x.server.hits
        for _ in range(30):
            x.authenticate(x.token("forged-" + secrets.token_hex(4), key=x.key("forger")))
            time.sleep(0.1)
        time.sleep(3)
        fetched = x.server.hits - hits
        # The last fetch was the rotation check's, under a minute ago: none may follow.
        expect(fetched == 0, f"30 forged kids within a minute of a fetch caused {fetched} fetches")
    finally:
        x.reload(jwks_min_interval=1)
    hits = x.server.hits
    x.authenticate(x.token("forged-late", key=x.key("forger")))
    x.wait("a fetch once the interval has passed", lambda: x.server.hits > hits)


def check_grace_then_retire(x):
    x.publish("b")
    x.refetch()
    status, unpublished, _ = x.key_state("a")
    expect(status == "active" and unpublished, f"key a right after leaving the document: {status}, marked={unpublished}")
    expect(x.authenticate(x.token("a")) == "ok:app_user", "key a must verify during the grace period")
    x.reload(jwks_retire_grace=1)
    try:
        time.sleep(1.2)
        x.refetch()
        expect(x.key_state("a")[0] == "retired", f"key a after the grace period: {x.key_state('a')}")
        got = x.authenticate(x.token("a"))
        expect(got == "28000", f"token of a retired key: {got}")
        expect(x.key_state("b")[:2] == ("active", False), f"key b: {x.key_state('b')}")
    finally:
        x.reload(jwks_retire_grace=3600)


def check_failed_fetches_keep_keys(x):
    x.publish("b", "c")  # a successful fetch would add c
    expected = {"status500": "HTTP status 500", "garbage": "not JSON", "huge": "larger than",
                "slow": "within", "empty": "no usable"}
    try:
        for mode, words in expected.items():
            x.server.mode = mode
            _, _, error, _ = x.refetch()
            expect(error and words in error, f"{mode}: recorded error {error!r}")
            expect("do-not-log-me" not in error, f"{mode}: the error shows the URI's query")
            expect(x.key_state("c") is None, f"{mode}: key c was taken from a failed fetch")
            expect(x.key_state("b")[:2] == ("active", False), f"{mode}: key b is {x.key_state('b')}")
            expect(x.authenticate(x.token("b")) == "ok:app_user", f"{mode}: key b stopped verifying")
    finally:
        x.server.mode = "ok"
    _, _, error, keys = x.refetch()
    expect(error is None and keys == 2 and x.key_state("c"), f"recovery: error={error!r}, keys={keys}")
    log = open(os.path.join(x.c.dir, "log")).read()
    expect("could not refresh the keys" in log, "failed fetches were not logged")


def check_changed_key_never_taken(x):
    before = x.key_state("c")[2]
    swapped = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    x.server.doc = {"keys": [jwk(x.key("b"), "b"), jwk(swapped, "c")]}
    _, _, error, _ = x.refetch()
    expect(x.key_state("c")[2] == before, "a stored kid's key material was replaced")
    got = x.authenticate(x.token("c", key=swapped))
    expect(got == "28000", f"token signed by the swapped-in key: {got}")
    expect(x.authenticate(x.token("c")) == "ok:app_user", "the stored key c stopped verifying (grace period)")
    expect(x.key_state("c")[1], "the stored key c is no longer published, but is not marked so")
    x.publish("b", "c")
    x.refetch()
    expect(x.key_state("c")[:2] == ("active", False), f"key c once published again: {x.key_state('c')}")


def check_shared_secret_never_taken(x):
    secret = {"kty": "oct", "kid": "hs", "alg": "HS256", "k": base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode()}
    x.publish("b", "c", extra=[secret])
    x.refetch()
    expect(x.key_state("hs") is None, "a published shared secret was stored")


def check_untrusted_certificate(x):
    x.rogue.doc = {"keys": [jwk(x.key("r"), "r")]}
    uri = x.rogue.url.replace("https://", "https://probe-user:probe-secret@")
    x.admin("SELECT jwt_guard.set_issuer(%s, audience => ARRAY[%s], jwks_uri => %s)", (OTHER_ISS, AUD, uri))
    status = x.wait("the untrusted fetch", lambda: (s := x.status(OTHER_ISS)) and s[0] and s)
    expect(status[2] and status[1] is None, f"untrusted server: {status[1:]}")
    expect("probe-secret" not in status[2] and "do-not-log-me" not in status[2], "the error shows a credential")
    expect(x.key_state("r", OTHER_ISS) is None, "a key from an untrusted server was stored")
    expect(x.authenticate(x.token("r", iss=OTHER_ISS)) == "28000", "token of the untrusted server's key accepted")
    x.admin("SELECT jwt_guard.drop_issuer(%s)", (OTHER_ISS,))


def check_no_uri_no_fetch(x):
    x.admin("SELECT jwt_guard.set_issuer('https://static.remote.test/', audience => ARRAY['orders-api'])")
    hits = x.server.hits
    for _ in range(5):
        x.authenticate(x.token("unknown-" + secrets.token_hex(4), iss="https://static.remote.test/", key=x.key("s")))
    time.sleep(2.5)
    expect(x.server.hits == hits, f"{x.server.hits - hits} fetches for an issuer without jwks_uri")


def check_periodic_refresh(x):
    x.publish("b", "c", "d")
    x.reload(jwks_refresh=2)
    try:
        x.wait("key d from the periodic refresh", lambda: x.key_state("d"))
    finally:
        x.reload(jwks_refresh=3600)


def check_fetch_at_start(x):
    # A look-alike in a database without the extension: a schema named jwt_guard whose
    # "issuer_profiles" runs a function. The launcher visits that database too; the worker
    # must see that the extension is not installed and never read it (as a superuser).
    x.admin("CREATE DATABASE lookalike")
    with psycopg.connect(host=x.c.dir, port=x.c.port, user="postgres", dbname="lookalike", autocommit=True) as conn:
        conn.execute("CREATE TABLE public.evidence (who text)")
        conn.execute("CREATE FUNCTION public.evil() RETURNS text LANGUAGE sql VOLATILE "
                     "AS $$ INSERT INTO public.evidence VALUES (current_user) RETURNING 'https://x/' $$")
        conn.execute("CREATE SCHEMA jwt_guard")
        conn.execute("CREATE VIEW jwt_guard.issuer_profiles AS SELECT public.evil() AS iss, "
                     "'https://127.0.0.1:1/jwks'::text AS jwks_uri")
    x.c.stop()
    x.publish("b", "c", "d", "e")
    x.c._run([f"{scenarios.PGBIN}/pg_ctl", "-D", x.c.data, "-l", os.path.join(x.c.dir, "log"), "-w", "start"])
    x.wait("key e fetched at server start, with no token", lambda: x.key_state("e"))
    expect(x.authenticate(x.token("e")) == "ok:app_user", "token of the key fetched at start")
    time.sleep(3)
    with psycopg.connect(host=x.c.dir, port=x.c.port, user="postgres", dbname="lookalike") as conn:
        ran = conn.execute("SELECT count(*) FROM public.evidence").fetchone()[0]
    expect(ran == 0, f"the worker ran a look-alike's function {ran} times")


def check_no_credential_in_log(x):
    log = open(os.path.join(x.c.dir, "log")).read()
    for secret in ("do-not-log-me", "probe-secret", "probe-user"):
        expect(secret not in log, f"the server log shows {secret!r} from a jwks_uri")


def check_worker_leaves_database(x):
    """A database whose last jwks_uri is dropped loses its worker, so it can be dropped."""
    x.admin("CREATE DATABASE other_app")
    with psycopg.connect(host=x.c.dir, port=x.c.port, user="postgres", dbname="other_app", autocommit=True) as conn:
        conn.execute("CREATE EXTENSION pg_jwt_guard")
        conn.execute("SELECT jwt_guard.set_issuer(%s, jwks_uri => %s)", (ISS, x.server.url))
        workers = "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_jwt_guard jwks worker' " \
                  "AND datname = 'other_app'"
        x.wait("a worker in the second database", lambda: conn.execute(workers).fetchone()[0] == 1)
        x.wait("its keys", lambda: conn.execute("SELECT count(*) FROM jwt_guard.keys").fetchone()[0] > 0)
        conn.execute("SELECT jwt_guard.drop_issuer(%s)", (ISS,))
        x.wait("the worker to leave", lambda: conn.execute(workers).fetchone()[0] == 0)
    x.admin("DROP DATABASE other_app")
    workers = x.admin("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_jwt_guard jwks worker'")
    expect(workers[0][0] == 1, f"{workers[0][0]} workers left; the first database's must stay")


CHECKS = [check_first_fetch, check_rotation_on_unknown_kid, check_refetch_rate_limit, check_grace_then_retire,
          check_failed_fetches_keep_keys, check_changed_key_never_taken, check_shared_secret_never_taken,
          check_untrusted_certificate, check_no_uri_no_fetch, check_periodic_refresh, check_worker_leaves_database,
          check_fetch_at_start, check_no_credential_in_log]


def run():
    c = RemoteCluster()
    pg = pwd.getpwnam("postgres")
    trusted_key, trusted_ca = make_ca("pg_jwt_guard test CA")
    rogue_key, rogue_ca = make_ca("unknown CA")
    ca_file = os.path.join(c.dir, "test-ca.pem")
    with open(ca_file, "wb") as f:
        f.write(trusted_ca.public_bytes(serialization.Encoding.PEM))
    os.chown(ca_file, pg.pw_uid, pg.pw_gid)
    server = JwksServer(c.dir, "trusted", trusted_key, trusted_ca)
    rogue = JwksServer(c.dir, "rogue", rogue_key, rogue_ca)
    config = (f"pg_jwt_guard.jwks_ca_file = '{ca_file}'\n"
              "pg_jwt_guard.jwks_refresh = 3600\npg_jwt_guard.jwks_min_interval = 1\n"
              "pg_jwt_guard.jwks_retire_grace = 3600\npg_jwt_guard.jwks_timeout = 2\n"
              "pg_jwt_guard.jwks_max_bytes = 65536\n"
              "pg_jwt_guard.allowed_roles = 'app_user'\npg_jwt_guard.login_roles = 'authenticator'\n"
              )
    results = []
    try:
        c.start(preload=True, extra=config)
        setup(c, ca_file)
        x = Ctx(c, server, rogue)
        for check in CHECKS:
            name = check.__name__[len("check_"):]
            started = time.time()
            try:
                check(x)
                problem = None
            except Fail as e:
                problem = str(e)
            except Exception as e:  # an unexpected error is a failed check, not a crash
                problem = f"{type(e).__name__}: {e}"
            line = f"remote_jwks {name} ... " + (f"FAILED: {problem}" if problem else f"ok ({time.time() - started:.1f} s)")
            print(line, flush=True)
            results.append((name, problem))
    finally:
        try:
            c.stop()
        except Exception:
            pass
        server.close()
        rogue.close()
        if not os.environ.get("REMOTE_JWKS_KEEP"):
            c.remove()
        else:
            print(f"cluster kept in {c.dir}")
    return results


def run_all(env=None, minters=None):
    results = run()
    failed = sum(1 for _, p in results if p)
    return len(results) - failed, failed


if __name__ == "__main__":
    passed, failed = run_all()
    print(f"{passed} passed, {failed} failed")
    sys.exit(0 if failed == 0 else 1)

-- Revocation by jti and by subject; delegated administration through jwt_guard_admin.
-- Administration runs as the superuser or as a member of jwt_guard_admin; tokens are tried as
-- tester. (Revocation reaching a session that is already open is checked in scenarios.py.)
\set VERBOSITY terse
\getenv tok_old TOK_REV_OLD
\getenv tok_fresh TOK_REV_FRESH
\getenv tok_no_iat TOK_REV_NO_IAT
\getenv tok_other TOK_REV_OTHER
\getenv tok_reader TOK_READER_ACME
-- The extension made the role; it cannot log in.
SELECT rolname, rolcanlogin, rolsuper FROM pg_roles WHERE rolname = 'jwt_guard_admin';
CREATE ROLE rev_admin LOGIN INHERIT;
GRANT jwt_guard_admin TO rev_admin;
\c - tester
SELECT t.auth(:'tok_old');
-- Revoking one token by jti: only that token is refused.
\c - rev_admin
SELECT jwt_guard.revoke_token('rev-jti-old');
SELECT kind, value, iss, expires_at IS NULL AS no_expiry, revoked_by FROM jwt_guard.revocations ORDER BY kind, value;
\c - tester
SELECT t.auth(:'tok_old');
SELECT t.auth(:'tok_fresh');
SELECT t.verify(:'tok_old');
-- Unrevoking it lets it in again.
\c - rev_admin
SELECT jwt_guard.unrevoke_token('rev-jti-old');
SELECT jwt_guard.unrevoke_token('rev-jti-old');
\c - tester
SELECT t.auth(:'tok_old');
-- A subject revocation refuses that subject's tokens issued before the instant, and tokens
-- without iat; later tokens and other subjects pass.
\c - rev_admin
SELECT jwt_guard.revoke_subject('rev-user', now() - interval '60 seconds');
\c - tester
SELECT regexp_replace(t.auth(:'tok_old'), '\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\+00', '<instant>') AS auth;
SELECT regexp_replace(t.auth(:'tok_no_iat'), '\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\+00', '<instant>') AS auth;
SELECT t.auth(:'tok_fresh');
SELECT t.auth(:'tok_other');
-- Bound to another issuer, it does not apply to this issuer's tokens.
\c - rev_admin
SELECT jwt_guard.unrevoke_subject('rev-user');
SELECT jwt_guard.revoke_subject('rev-user', now(), 'https://other-issuer.test/');
\c - tester
SELECT t.auth(:'tok_old');
\c - rev_admin
SELECT jwt_guard.unrevoke_subject('rev-user', 'https://other-issuer.test/');
-- 'infinity' revokes every token of a subject; '-infinity' is refused.
SELECT jwt_guard.revoke_subject('rev-other', 'infinity');
SELECT t.try($$SELECT jwt_guard.revoke_subject('rev-other', '-infinity')$$);
\c - tester
SELECT t.auth(:'tok_other');
\c - rev_admin
SELECT jwt_guard.unrevoke_subject('rev-other');
SELECT count(*) FROM jwt_guard.revocations;
-- Entries whose tokens have long expired are purged by a write, at most once an hour.
SELECT jwt_guard.revoke_token('long-gone', now() - interval '1 hour');
SELECT jwt_guard.revoke_token('still-valid', now() + interval '1 hour');
SELECT value FROM jwt_guard.revocations ORDER BY value;
\c - postgres
UPDATE jwt_guard.revocation_epoch SET purged = now() - interval '61 minutes';
\c - rev_admin
SELECT jwt_guard.revoke_token('another');
SELECT value FROM jwt_guard.revocations ORDER BY value;
SELECT jwt_guard.unrevoke_token('another');
SELECT jwt_guard.unrevoke_token('still-valid');
-- Arguments are checked.
SELECT t.try($$SELECT jwt_guard.revoke_token('')$$);
SELECT t.try($$SELECT jwt_guard.revoke_token(NULL)$$);
SELECT t.try($$SELECT jwt_guard.revoke_subject('x', NULL)$$);
-- jwt_guard_admin administers keys and issuers too, without touching the tables directly.
SELECT jwt_guard.add_key('admin-added', 'HS256', repeat('s', 32));
SELECT jwt_guard.retire_key('admin-added');
SELECT kid, status FROM jwt_guard.keys WHERE kid = 'admin-added';
SELECT t.try('SELECT count(*) FROM jwt_guard.key_store');
SELECT t.try($$UPDATE jwt_guard.key_store SET status = 'active'$$);
SELECT t.try($$INSERT INTO jwt_guard.revoked_tokens (jti) VALUES ('direct')$$);
-- Nobody else may revoke or read the list.
\c - tester
SELECT t.try($$SELECT jwt_guard.revoke_token('x')$$);
SELECT t.try($$SELECT jwt_guard.unrevoke_subject('rev-user')$$);
SELECT t.try('SELECT count(*) FROM jwt_guard.revocations');
-- A token role that is, or belongs to, jwt_guard_admin is refused.
SELECT t.auth(:'tok_reader');
\c - postgres
GRANT jwt_guard_admin TO app_reader;
\c - tester
SELECT t.auth(:'tok_reader');
\c - postgres
REVOKE jwt_guard_admin FROM app_reader;
-- A login role listed in pg_jwt_guard.login_roles never administers, even as a member.
ALTER ROLE authenticator INHERIT;
GRANT jwt_guard_admin TO authenticator;
\c - authenticator
SELECT jwt_guard.revoke_token('from-a-login-role');
\c - postgres
ALTER ROLE authenticator NOINHERIT;
REVOKE jwt_guard_admin FROM authenticator;
SELECT count(*) FROM jwt_guard.revoked_tokens WHERE jti = 'from-a-login-role';
DROP ROLE rev_admin;

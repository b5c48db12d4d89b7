-- Key registration rules (22023 for weak or mismatched keys), privileges, retirement.
\set VERBOSITY terse
\getenv key_hs256 KEY_HS256
\getenv key_hs512 KEY_HS512
\getenv key_short KEY_HS256_SHORT
\getenv key_rs256 KEY_RS256
\getenv key_es256 KEY_ES256
\getenv key_es384 KEY_ES384
\getenv key_rsa1024 KEY_RSA1024
\getenv key_rsa_private KEY_RSA_PRIVATE
\getenv jwks_use_enc JWKS_USE_ENC
\getenv jwks_ops_encrypt JWKS_OPS_ENCRYPT
\getenv jwks_dup_kid JWKS_DUP_KID
\getenv jwks_crv JWKS_CRV_MISMATCH
\getenv jwks_weak_rsa JWKS_WEAK_RSA
\getenv jwks_private JWKS_PRIVATE
SELECT t.try(format('SELECT jwt_guard.add_key(%L, %L, %L)', 'weak-1', 'HS256', :'key_short'));
SELECT t.try(format('SELECT jwt_guard.add_key(%L, %L, %L)', 'weak-2', 'HS256', ''));
SELECT t.try(format('SELECT jwt_guard.add_key(%L, %L, %L)', 'weak-3', 'HS512', repeat('a', 63)));
SELECT t.try(format('SELECT jwt_guard.add_key(%L, %L, %L)', 'weak-4', 'HS384', repeat('a', 47)));
SELECT t.try(format('SELECT jwt_guard.add_key(%L, %L, %L)', 'weak-5', 'RS256', :'key_rsa1024'));
SELECT t.try(format('SELECT jwt_guard.add_key(%L, %L, %L)', 'weak-6', 'ES256', :'key_es384'));
SELECT t.try(format('SELECT jwt_guard.add_key(%L, %L, %L)', 'weak-7', 'ES256', :'key_rs256'));
SELECT t.try(format('SELECT jwt_guard.add_key(%L, %L, %L)', 'weak-8', 'HS256', :'key_rs256'));
SELECT t.try(format('SELECT jwt_guard.add_key(%L, %L, %L)', 'weak-9', 'RS256', :'key_rsa_private'));
SELECT t.try(format('SELECT jwt_guard.add_key(%L, %L, %L)', 'weak-10', 'none', :'key_hs256'));
SELECT t.try(format('SELECT jwt_guard.add_key(%L, %L, %L)', 'weak-11', 'rs256', :'key_rs256'));
SELECT t.try(format('SELECT jwt_guard.add_key(%L, %L, %L)', 'weak-12', 'ES512', :'key_es256'));
SELECT t.try(format('SELECT jwt_guard.add_key(%L, %L, %L)', 'test-hs256', 'HS256', :'key_hs256'));
SELECT t.try(format('SELECT jwt_guard.add_key(%L, %L, %L)', '', 'HS256', :'key_hs256'));
SELECT t.try(format('SELECT jwt_guard.import_jwks(%L)', :'jwks_use_enc'));
SELECT t.try(format('SELECT jwt_guard.import_jwks(%L)', :'jwks_ops_encrypt'));
SELECT t.try(format('SELECT jwt_guard.import_jwks(%L)', :'jwks_dup_kid'));
SELECT t.try(format('SELECT jwt_guard.import_jwks(%L)', :'jwks_crv'));
SELECT t.try(format('SELECT jwt_guard.import_jwks(%L)', :'jwks_weak_rsa'));
SELECT t.try(format('SELECT jwt_guard.import_jwks(%L)', :'jwks_private'));
SELECT t.try($$SELECT jwt_guard.import_jwks('{"keys":[]}')$$);
SELECT t.try($$SELECT jwt_guard.import_jwks('[]')$$);
SELECT t.try($$SELECT jwt_guard.add_key(NULL, 'HS256', repeat('k', 32))$$);
SELECT t.try($$SELECT jwt_guard.add_key('null-key', 'HS256', NULL)$$);
SELECT t.try($$SELECT jwt_guard.import_jwks(NULL)$$);
-- Nothing half-imported.
SELECT count(*) AS keys FROM jwt_guard.keys;
-- The same outside any savepoint or exception block, with a good key before the bad one: the
-- set's first key (a good one, under a new kid) comes before a weak RSA key, refused while
-- the set is checked; or before a key whose kid is already stored, refused only when it is
-- stored, after the first one was. Either way the first key is not stored.
\getenv jwks_good JWKS_GOOD
SELECT jsonb_build_object('keys', jsonb_build_array(
    jsonb_set((:'jwks_good'::jsonb) -> 'keys' -> 0, '{kid}', '"half-1"'),
    (:'jwks_weak_rsa'::jsonb) -> 'keys' -> 0)) AS jwks_good_then_weak \gset
SELECT jsonb_build_object('keys', jsonb_build_array(
    jsonb_set((:'jwks_good'::jsonb) -> 'keys' -> 0, '{kid}', '"half-2"'),
    (:'jwks_good'::jsonb) -> 'keys' -> 1)) AS jwks_good_then_stored \gset
SELECT jwt_guard.import_jwks(:'jwks_good_then_weak'::jsonb);
SELECT jwt_guard.import_jwks(:'jwks_good_then_stored'::jsonb);
SELECT count(*) AS keys, count(*) FILTER (WHERE kid LIKE 'half-%') AS half_imported FROM jwt_guard.keys;
-- Each alone is fine: the good key imports, the stored one is refused.
BEGIN;
SELECT jwt_guard.import_jwks(jsonb_build_object('keys', jsonb_build_array(
    jsonb_set((:'jwks_good'::jsonb) -> 'keys' -> 0, '{kid}', '"half-2"'))));
ROLLBACK;
-- The view never shows key material; the store is for its owner only.
SELECT column_name FROM information_schema.columns
WHERE table_schema = 'jwt_guard' AND table_name = 'keys' ORDER BY ordinal_position;
\c - tester
SELECT t.try('SELECT * FROM jwt_guard.key_store');
SELECT t.try('SELECT * FROM jwt_guard.keys');
SELECT t.try(format('SELECT jwt_guard.add_key(%L, %L, %L)', 'mine', 'HS256', repeat('k', 32)));
SELECT t.try($$SELECT jwt_guard.retire_key('test-hs256')$$);
SELECT t.try($$SELECT jwt_guard.import_jwks('{"keys":[]}')$$);
SELECT t.try($$DELETE FROM jwt_guard.key_store$$);
-- Retirement and replacement by another session reach an open session at its next
-- authenticate(), on the same backend, although the token and the key are cached there. The
-- other session is the superuser through dblink.
\getenv tok_retire TOK_RETIRE_ME
\getenv tok_replacement TOK_REPLACEMENT
\getenv key_replacement KEY_REPLACEMENT
\c - postgres
SELECT jwt_guard.add_key('retire-me', 'HS512', :'key_hs512');
CREATE EXTENSION dblink;
CREATE FUNCTION t.other_session(sql text) RETURNS text LANGUAGE sql SECURITY DEFINER
    AS $$ SELECT r FROM dblink('dbname=' || current_database(), sql) AS d(r text) $$;
REVOKE ALL ON FUNCTION t.other_session(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION t.other_session(text) TO tester;
\c - tester
SELECT pg_backend_pid() AS keys_backend \gset
BEGIN;
SELECT jwt_guard.authenticate(:'tok_retire') ->> 'sub' AS sub;
COMMIT;
SELECT t.auth(:'tok_retire');
SELECT t.other_session($$SELECT 'retired' FROM jwt_guard.retire_key('retire-me')$$);
SELECT t.auth(:'tok_retire');
SELECT t.verify(:'tok_retire');
-- Replaced: a key bound to the issuer takes the retired key's kid. The old token now meets the
-- new key (bad signature); the new key's token is accepted.
SELECT t.auth(:'tok_replacement');
SELECT t.other_session(format($$SELECT 'added' FROM jwt_guard.add_key(%L, %L, %L, %L)$$,
                              'retire-me', 'HS512', :'key_replacement', 'https://issuer.test'));
SELECT t.auth(:'tok_retire');
SELECT t.auth(:'tok_replacement');
-- Retired while a transaction was open (REPEATABLE READ, snapshot taken).
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT t.verify(:'tok_replacement');
SELECT t.other_session($$SELECT 'retired' FROM jwt_guard.retire_key('retire-me', 'https://issuer.test')$$);
SELECT t.auth(:'tok_replacement');
ROLLBACK;
SELECT pg_backend_pid() = :keys_backend AS same_backend;
\c - postgres
SELECT t.try($$SELECT jwt_guard.retire_key('retire-me')$$);
SELECT kid, issuer, status, retired IS NOT NULL AS has_retired_at FROM jwt_guard.keys
WHERE kid = 'retire-me' ORDER BY issuer NULLS FIRST;
DROP FUNCTION t.other_session(text);
DROP EXTENSION dblink;

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
-- Retirement: refused from the next statement on (the second-session case is in scenarios.py).
\getenv tok_retire TOK_RETIRE_ME
\c - postgres
SELECT jwt_guard.add_key('retire-me', 'HS512', :'key_hs512');
\c - tester
SELECT t.verify(:'tok_retire');
\c - postgres
SELECT jwt_guard.retire_key('retire-me');
SELECT t.try($$SELECT jwt_guard.retire_key('retire-me')$$);
SELECT kid, status, retired IS NOT NULL AS has_retired_at FROM jwt_guard.keys WHERE kid = 'retire-me';
\c - tester
SELECT t.verify(:'tok_retire');

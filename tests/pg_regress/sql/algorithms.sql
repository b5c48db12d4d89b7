-- Every algorithm, tokens minted by PyJWT, as the powerless login role.
\set VERBOSITY terse
\c - tester
SELECT current_user, session_user;
\getenv tok_hs256 TOK_HS256
\getenv tok_hs384 TOK_HS384
\getenv tok_hs512 TOK_HS512
\getenv tok_rs256 TOK_RS256
\getenv tok_rs384 TOK_RS384
\getenv tok_rs512 TOK_RS512
\getenv tok_ps256 TOK_PS256
\getenv tok_ps384 TOK_PS384
\getenv tok_ps512 TOK_PS512
\getenv tok_es256 TOK_ES256
\getenv tok_es384 TOK_ES384
\getenv tok_eddsa TOK_EDDSA
\getenv tok_jwks_es256 TOK_JWKS_ES256
\getenv tok_jwks_rs256 TOK_JWKS_RS256
SELECT t.auth(:'tok_hs256');
SELECT t.auth(:'tok_hs384');
SELECT t.auth(:'tok_hs512');
SELECT t.auth(:'tok_rs256');
SELECT t.auth(:'tok_rs384');
SELECT t.auth(:'tok_rs512');
SELECT t.auth(:'tok_ps256');
SELECT t.auth(:'tok_ps384');
SELECT t.auth(:'tok_ps512');
SELECT t.auth(:'tok_es256');
SELECT t.auth(:'tok_es384');
SELECT t.auth(:'tok_eddsa');
SELECT t.auth(:'tok_jwks_es256');
SELECT t.auth(:'tok_jwks_rs256');
-- Each call above ran in its own transaction: nothing is left behind.
SELECT current_user, jwt_guard.is_authenticated(), jwt_guard.sub();
-- verify() checks without switching.
SELECT t.verify(:'tok_rs256');
-- Signature tampering.
\getenv tok_bad_sig TOK_BAD_SIG
\getenv tok_other_sig TOK_OTHER_SIG
SELECT t.auth(:'tok_bad_sig');
SELECT t.auth(:'tok_other_sig');
-- Algorithm confusion: HS256 MACed over the ES256 kid; same-family downgrade RS256 -> PS256.
\getenv tok_confusion TOK_CONFUSION
\getenv tok_downgrade TOK_DOWNGRADE
SELECT t.auth(:'tok_confusion');
SELECT t.auth(:'tok_downgrade');
-- NULL and empty tokens are errors, not a silent NULL.
SELECT t.auth(NULL);
SELECT t.auth('');
SELECT current_user, jwt_guard.is_authenticated();

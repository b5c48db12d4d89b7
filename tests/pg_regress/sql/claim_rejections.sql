-- Time, issuer and audience rules (threats.md §2.2), including CVE-2026-25537 shapes.
\set VERBOSITY terse
\c - tester
\getenv tok_expired TOK_EXPIRED
\getenv tok_expired_in_leeway TOK_EXPIRED_IN_LEEWAY
\getenv tok_nbf_future TOK_NBF_FUTURE
\getenv tok_iat_future TOK_IAT_FUTURE
\getenv tok_too_long TOK_TOO_LONG
\getenv tok_no_exp TOK_NO_EXP
\getenv tok_forever TOK_FOREVER
\getenv tok_exp_string TOK_EXP_STRING
\getenv tok_nbf_string TOK_NBF_STRING
\getenv tok_exp_float TOK_EXP_FLOAT
\getenv tok_wrong_iss TOK_WRONG_ISS
\getenv tok_no_iss TOK_NO_ISS
\getenv tok_iss_array TOK_ISS_ARRAY
\getenv tok_wrong_aud TOK_WRONG_AUD
\getenv tok_no_aud TOK_NO_AUD
\getenv tok_aud_array_ok TOK_AUD_ARRAY_OK
\getenv tok_aud_number TOK_AUD_NUMBER
\getenv tok_aud_mixed TOK_AUD_MIXED
SELECT t.auth(:'tok_expired');
-- Expired 10 s ago: inside the default 30 s leeway.
SELECT t.auth(:'tok_expired_in_leeway');
SELECT t.auth(:'tok_nbf_future');
SELECT t.auth(:'tok_iat_future');
SELECT t.auth(:'tok_too_long');
SELECT t.auth(:'tok_no_exp');
-- exp = 2^64-1 (never expires for some libraries): the remaining lifetime depends on now, so mask it.
SELECT regexp_replace(t.auth(:'tok_forever'), 'of \d+ s', 'of N s') AS auth;
SELECT t.auth(:'tok_exp_string');
SELECT t.auth(:'tok_nbf_string');
SELECT t.auth(:'tok_exp_float');
SELECT t.auth(:'tok_wrong_iss');
SELECT t.auth(:'tok_no_iss');
SELECT t.auth(:'tok_iss_array');
SELECT t.auth(:'tok_wrong_aud');
SELECT t.auth(:'tok_no_aud');
SELECT t.auth(:'tok_aud_array_ok');
SELECT t.auth(:'tok_aud_number');
SELECT t.auth(:'tok_aud_mixed');
SELECT current_user, jwt_guard.is_authenticated();

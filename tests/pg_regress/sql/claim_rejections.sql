-- Time, issuer and audience rules (docs/threat-model.md §2.2), including CVE-2026-25537 shapes.
\set VERBOSITY terse
-- Tokens whose validity depends on the clock are minted here, relative to the server's clock, in
-- the statement that verifies them, so no time passes between minting and use. HS256 after
-- RFC 7515 and RFC 2104, from PostgreSQL's own sha256(), with the fixture secret of kid test-hs256.
CREATE FUNCTION t.b64url(b bytea) RETURNS text LANGUAGE sql IMMUTABLE
    AS $$ SELECT rtrim(translate(encode(b, 'base64'), E'+/\n', '-_'), '=') $$;
CREATE FUNCTION t.hs256_token(secret text, kid text, claims jsonb) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    k bytea := convert_to(secret, 'UTF8');
    ipad bytea;
    opad bytea;
    signing_input text;
BEGIN
    IF length(k) > 64 THEN k := sha256(k); END IF;
    k := k || decode(repeat('00', 64 - length(k)), 'hex');
    ipad := k;
    opad := k;
    FOR i IN 0..63 LOOP
        ipad := set_byte(ipad, i, get_byte(k, i) # 54);
        opad := set_byte(opad, i, get_byte(k, i) # 92);
    END LOOP;
    signing_input := t.b64url(convert_to(jsonb_build_object('alg', 'HS256', 'kid', kid)::text, 'UTF8'))
        || '.' || t.b64url(convert_to(claims::text, 'UTF8'));
    RETURN signing_input || '.'
        || t.b64url(sha256(opad || sha256(ipad || convert_to(signing_input, 'UTF8'))));
END $$;
-- Claims of a token that expired `ago` seconds before this statement (lifetime 10 minutes).
CREATE FUNCTION t.expired_ago(ago int) RETURNS jsonb LANGUAGE sql AS $$
    SELECT jsonb_build_object('iss', 'https://issuer.test', 'aud', 'orders-api', 'sub', 'leeway-user',
        'role', 'app_user', 'iat', now_s - ago - 600, 'exp', now_s - ago)
    FROM (SELECT floor(extract(epoch FROM clock_timestamp()))::bigint AS now_s) AS n $$;
\getenv key_hs256 KEY_HS256
\c - tester
\getenv tok_expired TOK_EXPIRED
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
-- Expires in 60 s: accepted, which shows the minter signs what the extension verifies.
SELECT t.auth(t.hs256_token(:'key_hs256', 'test-hs256', t.expired_ago(-60)));
-- Expired 10 s ago: inside the default 30 s leeway.
SELECT t.auth(t.hs256_token(:'key_hs256', 'test-hs256', t.expired_ago(10)));
-- Expired 40 s ago: outside it (the time in the message is masked).
SELECT regexp_replace(t.auth(t.hs256_token(:'key_hs256', 'test-hs256', t.expired_ago(40))),
                      'expired at .*', 'expired at T (exp N)') AS auth;
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

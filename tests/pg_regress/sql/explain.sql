-- jwt_guard.explain(): every check in order, all of them run, no identity changed.
-- Times and sizes change with every run of the fixtures: they are masked.
\set VERBOSITY terse
\getenv tok_acme TOK_TENANT_ACME
\getenv tok_bad_sig TOK_BAD_SIG
\getenv tok_many TOK_EXPLAIN_MANY
\getenv tok_bearer TOK_BEARER
\getenv tok_kid_unknown TOK_KID_UNKNOWN
\getenv tok_role_login TOK_ROLE_LOGIN
\getenv tok_role_missing TOK_ROLE_MISSING
\getenv tok_rev_other TOK_REV_OTHER
\getenv tok_list TOK_ROLE_LIST
CREATE FUNCTION t.explained(tok text, role text DEFAULT NULL)
RETURNS TABLE (step int, check_name text, ok boolean, detail text) LANGUAGE sql AS $$
    SELECT step, check_name, ok,
           regexp_replace(regexp_replace(detail, '(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\+00|\(exp \d+\))', '<time>', 'g'),
                          '^\d+ bytes', '<n> bytes')
    FROM jwt_guard.explain(tok, role)
$$;
-- A good token: every step passes, and the last row says so.
SELECT * FROM t.explained(:'tok_acme');
-- A bad signature does not stop the claim checks; the verdict names the first failure.
SELECT step, check_name, ok FROM t.explained(:'tok_bad_sig') WHERE ok IS DISTINCT FROM true;
-- Expired, foreign issuer, wrong audience, a superuser role and a numeric tenant: all shown.
SELECT check_name, detail FROM t.explained(:'tok_many') WHERE ok IS DISTINCT FROM true;
-- Not a JWT: what cannot run says so.
SELECT * FROM t.explained(:'tok_bearer');
SELECT check_name, ok, detail FROM t.explained(:'tok_kid_unknown') WHERE ok IS DISTINCT FROM true;
-- Role checks one by one: a login role, a role that does not exist.
SELECT check_name, ok, detail FROM t.explained(:'tok_role_login') WHERE check_name LIKE 'role%';
SELECT check_name, ok, detail FROM t.explained(:'tok_role_missing') WHERE check_name LIKE 'role%';
-- The role argument, as authenticate(token, role) takes it.
SELECT check_name, ok, detail FROM t.explained(:'tok_list', 'app_user') WHERE check_name = 'role selection';
SELECT check_name, ok, detail FROM t.explained(:'tok_list', 'su_role') WHERE check_name = 'role selection';
-- Revocation is a step too.
SELECT jwt_guard.revoke_token('rev-jti-other');
SELECT check_name, ok, detail FROM t.explained(:'tok_rev_other') WHERE ok IS DISTINCT FROM true;
SELECT jwt_guard.unrevoke_token('rev-jti-other');
SELECT check_name, ok FROM t.explained(:'tok_rev_other') WHERE check_name IN ('revocation', 'result');
SELECT * FROM jwt_guard.explain(NULL);
-- Nothing changed: no identity, same user.
SELECT jwt_guard.is_authenticated(), current_user;
-- Never the token, nor its signature, in any detail.
SELECT count(*) AS leaks FROM (VALUES (:'tok_acme'), (:'tok_bad_sig'), (:'tok_many'), (:'tok_bearer')) v(tok),
    jwt_guard.explain(v.tok) e
WHERE strpos(e.detail, split_part(replace(v.tok, 'Bearer ', ''), '.', 3)) > 0
   OR strpos(e.detail, split_part(replace(v.tok, 'Bearer ', ''), '.', 2)) > 0;
-- explain() and verify() agree on every fixture token.
\getenv t01 TOK_TENANT_GLOBEX
\getenv t02 TOK_EXPIRED
\getenv t03 TOK_NBF_FUTURE
\getenv t04 TOK_IAT_FUTURE
\getenv t05 TOK_TOO_LONG
\getenv t06 TOK_NO_EXP
\getenv t07 TOK_WRONG_ISS
\getenv t08 TOK_NO_AUD
\getenv t09 TOK_AUD_ARRAY_OK
\getenv t10 TOK_AUD_MIXED
\getenv t11 TOK_ROLE_SUPERUSER
\getenv t12 TOK_ROLE_UNLISTED
\getenv t13 TOK_ROLE_KEYCLOAK
\getenv t14 TOK_DUP_ROLE
\getenv t15 TOK_EXP_FLOAT
\getenv t16 TOK_HDR_JKU
\getenv t17 TOK_CONFUSION
\getenv t18 TOK_DOWNGRADE
\getenv t19 TOK_PERM_MALFORMED
\getenv t20 TOK_TENANT_NUMBER
\getenv t21 TOK_DEEP_TOO
\getenv t22 TOK_NONE_ALG
\getenv t23 TOK_HUGE
\getenv t24 TOK_NO_KID_HS256
\getenv t25 TOK_ROLE_TABLE_OWNER
\getenv t26 TOK_IDP_B_CLAIMS_A
\getenv t27 TOK_RS256
\getenv t28 TOK_EDDSA
SELECT count(*) AS tokens,
       count(*) FILTER (WHERE verified) AS accepted,
       count(*) FILTER (WHERE verified IS DISTINCT FROM explained) AS disagreements
FROM (SELECT t.verify(tok) LIKE 'ok%' AS verified,
             (SELECT ok FROM jwt_guard.explain(tok) ORDER BY step DESC LIMIT 1) AS explained
      FROM unnest(ARRAY[:'tok_acme', :'tok_bad_sig', :'tok_many', :'tok_bearer', :'tok_kid_unknown',
                        :'tok_role_login', :'tok_role_missing', :'tok_list', :'t01', :'t02', :'t03',
                        :'t04', :'t05', :'t06', :'t07', :'t08', :'t09', :'t10', :'t11', :'t12', :'t13',
                        :'t14', :'t15', :'t16', :'t17', :'t18', :'t19', :'t20', :'t21', :'t22', :'t23',
                        :'t24', :'t25', :'t26', :'t27', :'t28']) tok) v;
-- A key store that cannot be read is an error, never "unknown kid" or an empty key set.
BEGIN;
ALTER TABLE jwt_guard.key_store RENAME TO key_store_moved;
SELECT t.verify(:'tok_acme');
SELECT t.verify(:'tok_kid_unknown');
ROLLBACK;
SELECT t.verify(:'tok_acme');
-- Administrators only: not the login role, not a client; jwt_guard_admin may.
CREATE ROLE ops_admin LOGIN;
GRANT jwt_guard_admin TO ops_admin;
CREATE TABLE t.superuser_lint AS SELECT severity, object, finding FROM jwt_guard.check_setup();
GRANT SELECT ON t.superuser_lint TO ops_admin;
\c - authenticator
SELECT count(*) FROM jwt_guard.explain(:'tok_acme');
\c - tester
SELECT count(*) FROM jwt_guard.explain(:'tok_acme');
\c - ops_admin
SELECT check_name, ok FROM jwt_guard.explain(:'tok_acme') WHERE check_name = 'result';
-- The administrator's lint finds what the superuser's does.
SELECT count(*) > 20 AS many_findings,
       count(*) = (SELECT count(*) FROM t.superuser_lint) AS same_count,
       count(*) FILTER (WHERE (severity, object, finding) NOT IN (SELECT * FROM t.superuser_lint)) AS differences
FROM jwt_guard.check_setup();
\c - postgres
DROP TABLE t.superuser_lint;
DROP OWNED BY ops_admin;
DROP ROLE ops_admin;

-- Escape routes of docs/threat-model.md §3.4, tried as the login role (listed in pg_jwt_guard.login_roles)
-- with a valid low-privilege token. Each must fail, or end as the powerless login role.
\set VERBOSITY terse
-- Superuser-made helpers for routes a client could not create itself.
CREATE FUNCTION t.alias_set_config(text, text, boolean) RETURNS text
    LANGUAGE internal AS 'set_config_by_name';
CREATE FUNCTION t.tenant_immutable() RETURNS text LANGUAGE sql IMMUTABLE
    AS 'SELECT jwt_guard.tenant()';
CREATE FUNCTION t.auth_in_index(i int, tok text) RETURNS int LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN PERFORM jwt_guard.authenticate(tok); RETURN i; END $$;
CREATE FUNCTION t.become_app_user() RETURNS text LANGUAGE sql SET role = 'app_user'
    AS 'SELECT current_user::text';
CREATE TABLE t.indexed (i int);
INSERT INTO t.indexed VALUES (1);
-- Nothing in the extension schema runs with its owner's rights.
SELECT count(*) AS security_definer_functions FROM pg_proc
WHERE pronamespace = 'jwt_guard'::regnamespace AND prosecdef;
-- P19: authenticate inside an index expression (a security-restricted operation).
\getenv tok_acme TOK_TENANT_ACME
\getenv tok_globex TOK_TENANT_GLOBEX
SELECT t.try(format('CREATE INDEX ON t.indexed (t.auth_in_index(i, %L))', :'tok_acme'));
\c - authenticator
SHOW pg_jwt_guard.login_roles;
-- Even without a token, the login role cannot change role or session user.
SET ROLE app_user;
SET LOCAL ROLE app_user;
SET ROLE NONE;
RESET ROLE;
SELECT set_config('role', 'app_user', false);
SELECT set_config('role', 'app_user', true);
SET SESSION AUTHORIZATION DEFAULT;
SELECT current_user, session_user;
BEGIN;
SELECT jwt_guard.authenticate(:'tok_acme') ->> 'sub' AS sub;
-- P1: RESET ROLE.
SELECT t.try('RESET ROLE');
-- P2: SET ROLE in every spelling.
SELECT t.try('SET ROLE app_user');
SELECT t.try('SET LOCAL ROLE app_reader');
SELECT t.try('SET ROLE NONE');
SELECT t.try('SET ROLE "none"');
SELECT t.try('SET ROLE postgres');
-- P3: session authorization.
SELECT t.try('SET SESSION AUTHORIZATION DEFAULT');
SELECT t.try('RESET SESSION AUTHORIZATION');
SELECT t.try('SET SESSION AUTHORIZATION postgres');
-- P4: set_config, also through another function over the same C symbol, and pg_settings.
SELECT t.try($$SELECT set_config('role', 'postgres', false)$$);
SELECT t.try($$SELECT set_config('role', 'none', true)$$);
SELECT t.try($$SELECT set_config('session_authorization', 'postgres', false)$$);
SELECT t.try($$SELECT t.alias_set_config('role', 'app_reader', true)$$);
-- role is hidden from pg_settings, so this finds no row; the role is unchanged below.
SELECT t.try($$UPDATE pg_settings SET setting = 'postgres' WHERE name = 'role'$$);
SELECT current_user;
-- P8: functions whose SET clause changes role.
SELECT t.try($$CREATE FUNCTION pg_temp.f() RETURNS text LANGUAGE sql SET role = 'postgres' AS 'SELECT current_user::text'$$);
SELECT t.try($$CREATE FUNCTION pg_temp.g() RETURNS text LANGUAGE sql SET session_authorization = 'postgres' AS 'SELECT 1::text'$$);
SELECT t.try($$ALTER FUNCTION t.tenant_immutable() SET role = 'postgres'$$);
-- P9: dynamic SQL, and inside an exception block.
SELECT t.try('DO $d$ BEGIN EXECUTE ''SET ROLE postgres''; END $d$');
DO $$
BEGIN
    BEGIN
        EXECUTE 'RESET ROLE';
    EXCEPTION WHEN insufficient_privilege THEN
        RAISE NOTICE 'refused: %', SQLERRM;
    END;
END $$;
-- A function created earlier with SET role is refused when it runs.
SELECT t.try('SELECT t.become_app_user()');
-- Other statements that act outside the token's grant.
SELECT t.try($$ALTER SYSTEM SET work_mem = '1GB'$$);
SELECT t.try($$COPY (SELECT 1) TO PROGRAM 'true'$$);
SELECT t.try($$COPY t.indexed FROM PROGRAM 'true'$$);
SELECT t.try($$LOAD 'pg_jwt_guard'$$);
-- P17: a holdable cursor would outlive the identity.
SELECT t.try('DECLARE c CURSOR WITH HOLD FOR SELECT * FROM orders');
-- P18: a temporary table would outlive the identity; ON COMMIT DROP is fine.
SELECT t.try('CREATE TEMP TABLE stash AS SELECT * FROM orders');
SELECT t.try('CREATE TEMP TABLE stash2 (x int)');
SELECT t.try('SELECT * INTO TEMP stash3 FROM orders');
SELECT t.try('EXPLAIN ANALYZE CREATE TEMP TABLE stash4 AS SELECT * FROM orders');
SELECT t.try('CREATE TEMP TABLE scratch (x int) ON COMMIT DROP');
-- P7: RESET ALL and DISCARD PLANS leave the identity alone; DISCARD ALL is refused here.
RESET ALL;
DISCARD PLANS;
SELECT t.try('DISCARD ALL');
-- After all of this: still the token's role and claims.
SELECT current_user, session_user, jwt_guard.sub(), jwt_guard.tenant();
COMMIT;
-- P7: DISCARD ALL outside a transaction ends as the login role, with nothing.
DISCARD ALL;
SELECT current_user, session_user, jwt_guard.is_authenticated();
-- Documented route that only drops privileges: set_config(..., NULL) resets to the login role.
BEGIN;
SELECT jwt_guard.authenticate(:'tok_acme') ->> 'sub' AS sub;
SELECT set_config('role', NULL, true) AS role_setting;
SELECT current_user, t.try('SELECT count(*) FROM orders') AS read_orders;
ROLLBACK;
-- P15: a generic plan prepared under tenant A, executed under tenant B (same role). A locked
-- session may not PREPARE (a prepared statement outlives the transaction), so the plan cache
-- is exercised from the unlisted login role. Under a token, a named statement runs only if its
-- name is one a pooler made (pg_jwt_guard.statement_prefixes, default PGBOUNCER_).
\c - tester
PREPARE named AS SELECT count(*) FROM orders;
BEGIN;
SELECT jwt_guard.authenticate(:'tok_acme') ->> 'tenant_id' AS tenant;
EXECUTE named;
ROLLBACK;
BEGIN;
SELECT jwt_guard.authenticate(:'tok_acme') ->> 'tenant_id' AS tenant;
EXPLAIN (COSTS OFF) EXECUTE named;
ROLLBACK;
BEGIN;
SELECT jwt_guard.authenticate(:'tok_acme') ->> 'tenant_id' AS tenant;
CREATE TEMP TABLE copied ON COMMIT DROP AS EXECUTE named;
ROLLBACK;
\c - postgres
ALTER ROLE tester SET pg_jwt_guard.statement_prefixes = '*';
\c - tester
SET plan_cache_mode = force_generic_plan;
PREPARE q AS SELECT tenant_id, count(*) FROM orders GROUP BY 1;
BEGIN;
SELECT jwt_guard.authenticate(:'tok_acme') ->> 'tenant_id' AS tenant;
EXECUTE q;
EXECUTE q;
COMMIT;
BEGIN;
SELECT jwt_guard.authenticate(:'tok_globex') ->> 'tenant_id' AS tenant;
EXECUTE q;
COMMIT;
-- P16: an IMMUTABLE wrapper is folded into the generic plan with A's value; RLS still limits
-- B to globex, so B counts 0 rows where A's value is baked in. Keep accessors STABLE.
PREPARE q2 AS SELECT count(*) FROM orders WHERE tenant_id = t.tenant_immutable();
BEGIN;
SELECT jwt_guard.authenticate(:'tok_acme') ->> 'tenant_id' AS tenant;
EXECUTE q2;
COMMIT;
BEGIN;
SELECT jwt_guard.authenticate(:'tok_globex') ->> 'tenant_id' AS tenant;
EXECUTE q2;
COMMIT;
-- tenant() is never folded into a plan: the plan keeps the call, so one cached plan serves every
-- identity, across re-authentication, ROLLBACK TO SAVEPOINT and COMMIT.
PREPARE q3 AS SELECT count(*) FROM orders;
BEGIN;
SELECT jwt_guard.authenticate(:'tok_acme') ->> 'tenant_id' AS tenant;
SELECT l AS plan_filter FROM t.explain('SELECT count(*) FROM orders') AS e(l) WHERE l LIKE '%Filter%';
EXECUTE q3;
SELECT jwt_guard.authenticate(:'tok_globex') ->> 'tenant_id' AS tenant;
EXECUTE q3;
SAVEPOINT s;
SELECT jwt_guard.authenticate(:'tok_acme') ->> 'tenant_id' AS tenant;
EXECUTE q3;
ROLLBACK TO SAVEPOINT s;
EXECUTE q3;
COMMIT;
SELECT t.try('EXECUTE q3');
DEALLOCATE ALL;
RESET plan_cache_mode;
\c - postgres
ALTER ROLE tester RESET pg_jwt_guard.statement_prefixes;
\c - authenticator
-- ALTER ROLE ... SET role is not applied at login: the session starts as the login role.
\c - postgres
ALTER ROLE authenticator SET role = 'app_user';
\c - authenticator
SELECT current_user, session_user;
\c - postgres
ALTER ROLE authenticator RESET role;
\c - authenticator
-- P13/P14: the next client on this same backend (no reconnect in between, as behind a pooler)
-- starts with nothing, whether the token's transaction committed, rolled back or failed. The
-- token's transaction also plants what it may: a placeholder setting (SET LOCAL; a session-level
-- SET is refused).
SELECT pg_backend_pid() AS token_backend \gset
BEGIN;
SELECT jwt_guard.authenticate(:'tok_acme') ->> 'tenant_id' AS tenant;
SET LOCAL request.jwt.claims = '{"sub":"alice","tenant_id":"acme"}';
SELECT t.try($$SET request.jwt.claim.tenant_id = 'acme'$$);
SELECT current_user, jwt_guard.tenant(), count(*) FROM orders;
COMMIT;
SELECT pg_backend_pid() = :token_backend AS same_backend, current_user, session_user,
       jwt_guard.tenant() IS NULL AS no_tenant, jwt_guard.sub() IS NULL AS no_sub,
       jwt_guard.claims() IS NULL AS no_claims, jwt_guard.is_authenticated(),
       coalesce(current_setting('request.jwt.claims', true), '') AS leftover,
       current_setting('request.jwt.claim.tenant_id', true) AS leftover_claim;
SELECT count(*) FROM orders;
BEGIN;
SELECT jwt_guard.authenticate(:'tok_acme') ->> 'tenant_id' AS tenant;
ROLLBACK;
SELECT pg_backend_pid() = :token_backend AS same_backend, current_user, jwt_guard.sub() IS NULL AS no_sub,
       jwt_guard.is_authenticated();
BEGIN;
SELECT jwt_guard.authenticate(:'tok_acme') ->> 'tenant_id' AS tenant;
SELECT 1 / 0;
ROLLBACK;
SELECT pg_backend_pid() = :token_backend AS same_backend, current_user, jwt_guard.sub() IS NULL AS no_sub,
       jwt_guard.is_authenticated();
-- The next token on this backend gets its own identity and rows, nothing of the one before.
BEGIN;
SELECT jwt_guard.authenticate(:'tok_globex') ->> 'tenant_id' AS tenant;
SELECT pg_backend_pid() = :token_backend AS same_backend, current_user, jwt_guard.sub(), jwt_guard.tenant();
SELECT tenant_id, count(*) FROM orders GROUP BY tenant_id;
COMMIT;

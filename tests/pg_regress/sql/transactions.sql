-- Role and claims change together and end with the transaction (COMMIT, ROLLBACK,
-- ROLLBACK TO SAVEPOINT), as a pooled connection needs.
\set VERBOSITY terse
\c - tester
\getenv tok_acme TOK_TENANT_ACME
\getenv tok_globex TOK_TENANT_GLOBEX
\getenv tok_expired TOK_EXPIRED
-- COMMIT clears.
BEGIN;
SELECT jwt_guard.authenticate(:'tok_acme') ->> 'sub' AS sub;
SELECT current_user, jwt_guard.sub(), jwt_guard.tenant(), jwt_guard.is_authenticated();
SELECT count(*) FROM orders;
COMMIT;
SELECT current_user, jwt_guard.sub(), jwt_guard.tenant(), jwt_guard.is_authenticated();
SELECT t.try('SELECT count(*) FROM orders');
-- ROLLBACK clears.
BEGIN;
SELECT jwt_guard.authenticate(:'tok_acme') ->> 'sub' AS sub;
ROLLBACK;
SELECT current_user, jwt_guard.sub(), jwt_guard.is_authenticated();
-- An error aborts the transaction; afterwards nothing is left.
BEGIN;
SELECT jwt_guard.authenticate(:'tok_acme') ->> 'sub' AS sub;
SELECT 1 / 0;
ROLLBACK;
SELECT current_user, jwt_guard.sub(), jwt_guard.is_authenticated();
-- ROLLBACK TO SAVEPOINT undoes role and claims together.
BEGIN;
SAVEPOINT s1;
SELECT jwt_guard.authenticate(:'tok_acme') ->> 'sub' AS sub;
SELECT current_user, jwt_guard.sub();
ROLLBACK TO SAVEPOINT s1;
SELECT current_user, jwt_guard.sub(), jwt_guard.is_authenticated();
COMMIT;
-- Nested: A outside, B inside a savepoint; rolling back returns to A, entirely.
BEGIN;
SELECT jwt_guard.authenticate(:'tok_acme') ->> 'sub' AS sub;
SAVEPOINT s2;
SELECT jwt_guard.authenticate(:'tok_globex') ->> 'sub' AS sub;
SELECT current_user, jwt_guard.sub(), jwt_guard.tenant(), count(*) FROM orders;
ROLLBACK TO SAVEPOINT s2;
SELECT current_user, jwt_guard.sub(), jwt_guard.tenant(), count(*) FROM orders;
RELEASE SAVEPOINT s2;
COMMIT;
SELECT current_user, jwt_guard.sub();
-- Re-authenticating replaces the whole identity, never a union.
BEGIN;
SELECT jwt_guard.authenticate(:'tok_acme') ->> 'sub' AS sub;
SELECT jwt_guard.authenticate(:'tok_globex') ->> 'sub' AS sub;
SELECT jwt_guard.sub(), jwt_guard.tenant(), jwt_guard.has_scope('orders:write') AS write_scope;
SELECT DISTINCT tenant_id FROM orders;
COMMIT;
-- A failed authenticate leaves the previous identity untouched.
BEGIN;
SELECT jwt_guard.authenticate(:'tok_acme') ->> 'sub' AS sub;
SAVEPOINT s3;
SELECT jwt_guard.authenticate(:'tok_expired');
ROLLBACK TO SAVEPOINT s3;
SELECT current_user, jwt_guard.sub();
COMMIT;
-- reset() drops the identity at once.
BEGIN;
SELECT jwt_guard.authenticate(:'tok_acme') ->> 'sub' AS sub;
SELECT jwt_guard.reset();
SELECT current_user, jwt_guard.sub(), jwt_guard.is_authenticated();
SELECT t.try('SELECT count(*) FROM orders');
COMMIT;
-- A session-level setting changed under a token is refused at COMMIT even when reset() dropped
-- the identity first (this login role is not listed in pg_jwt_guard.login_roles).
BEGIN;
SELECT jwt_guard.authenticate(:'tok_acme') ->> 'sub' AS sub;
SELECT set_config('search_path', 'pg_temp, public', false) AS moved;
SELECT jwt_guard.reset();
COMMIT;
SHOW search_path;
-- Without a token in the transaction, the same change is this unlisted session's own.
BEGIN;
SELECT set_config('search_path', 'pg_temp, public', false) AS moved;
COMMIT;
SHOW search_path;
RESET search_path;
-- In autocommit the identity lasts one statement.
SELECT jwt_guard.authenticate(:'tok_acme') ->> 'sub' AS sub;
SELECT current_user, jwt_guard.sub();
-- Several statements in one query string share one implicit transaction.
SELECT jwt_guard.authenticate(:'tok_globex') IS NOT NULL AS ok \; SELECT current_user, jwt_guard.tenant();
SELECT current_user, jwt_guard.tenant();
-- plpgsql exception block around a failing authenticate: consistent state.
DO $$
BEGIN
    PERFORM jwt_guard.authenticate('x.y.z');
EXCEPTION WHEN others THEN
    RAISE NOTICE 'caught %', SQLSTATE;
END $$;
SELECT current_user, jwt_guard.is_authenticated();
-- Where a switched user would not stick, authenticate refuses.
\c - postgres
CREATE FUNCTION t.definer_auth(tok text) RETURNS text LANGUAGE plpgsql SECURITY DEFINER AS $$
BEGIN PERFORM jwt_guard.authenticate(tok); RETURN current_user; END $$;
CREATE FUNCTION t.definer_reset() RETURNS text LANGUAGE plpgsql SECURITY DEFINER AS $$
BEGIN PERFORM jwt_guard.reset(); RETURN current_user; END $$;
CREATE FUNCTION t.set_clause_auth(tok text) RETURNS text LANGUAGE plpgsql SET work_mem = '8MB' AS $$
BEGIN PERFORM jwt_guard.authenticate(tok); RETURN current_user; END $$;
\c - tester
SELECT t.try(format('SELECT t.definer_auth(%L)', :'tok_acme'));
SELECT t.try(format('SELECT t.set_clause_auth(%L)', :'tok_acme'));
SELECT current_user, jwt_guard.is_authenticated();
BEGIN;
SELECT jwt_guard.authenticate(:'tok_acme') ->> 'sub' AS sub;
SELECT t.try('SELECT t.definer_reset()');
SELECT current_user, jwt_guard.sub();
COMMIT;
-- A PL/pgSQL exception block that catches an error after a successful authenticate() in the same
-- block undoes role and claims together, back to what the transaction had before the block.
\c - postgres
CREATE FUNCTION t.auth_then_fail(tok text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE inside text;
BEGIN
    BEGIN
        PERFORM jwt_guard.authenticate(tok);
        inside := current_user || ' ' || jwt_guard.sub() || ' ' || jwt_guard.tenant();
        PERFORM 1 / 0;
        RETURN 'not caught';
    EXCEPTION WHEN division_by_zero THEN
        RETURN 'in the block: ' || inside || '; after the catch: ' || current_user || ' '
            || coalesce(jwt_guard.sub(), '-') || ' ' || coalesce(jwt_guard.tenant(), '-');
    END;
END $$;
\c - tester
-- No identity before the block: none after it.
BEGIN;
SELECT t.auth_then_fail(:'tok_acme');
SELECT current_user, jwt_guard.is_authenticated(), t.try('SELECT count(*) FROM orders') AS read_orders;
COMMIT;
-- An identity before the block (another role and tenant): that one, whole, after it.
\getenv tok_reader TOK_READER_ACME
BEGIN;
SELECT jwt_guard.authenticate(:'tok_reader') ->> 'sub' AS sub;
SELECT t.auth_then_fail(:'tok_globex');
SELECT current_user, jwt_guard.sub(), jwt_guard.tenant(), jwt_guard.has_scope('orders:read') AS globex_scope;
SELECT tenant_id, count(*) FROM orders GROUP BY tenant_id;
SELECT t.try($$INSERT INTO orders VALUES (100004, 'acme', 'x')$$) AS reader_insert;
COMMIT;
SELECT current_user, jwt_guard.is_authenticated();

-- Superuser setup: extension, roles, a FORCE RLS table, keys from the fixtures, helpers.
\set VERBOSITY terse
CREATE EXTENSION pg_jwt_guard;
SELECT extname, extnamespace::regnamespace FROM pg_extension WHERE extname = 'pg_jwt_guard';

-- The login role: no privileges, no memberships.
CREATE ROLE authenticator LOGIN NOINHERIT;
-- A second login role, not listed in pg_jwt_guard.login_roles: the verification suites run as
-- it, so their helpers in schema t can report refusals before a token. Lockdown and isolation
-- suites run as authenticator.
CREATE ROLE tester LOGIN NOINHERIT;
-- Roles tokens may name.
CREATE ROLE app_user NOLOGIN;
CREATE ROLE app_reader NOLOGIN;
-- Roles that are listed in allowed_roles but must still be refused.
CREATE ROLE su_role SUPERUSER NOLOGIN;
CREATE ROLE bypass_role BYPASSRLS NOLOGIN;
CREATE ROLE createrole_role CREATEROLE NOLOGIN;
CREATE ROLE createdb_role CREATEDB NOLOGIN;
CREATE ROLE repl_role REPLICATION NOLOGIN;
CREATE ROLE monitor_member NOLOGIN;
GRANT pg_monitor TO monitor_member;
CREATE ROLE bypass_member NOLOGIN;
GRANT bypass_role TO bypass_member;
CREATE ROLE table_owner NOLOGIN;
CREATE TABLE owned_table (x int);
ALTER TABLE owned_table OWNER TO table_owner;
ALTER TABLE owned_table ENABLE ROW LEVEL SECURITY;
CREATE ROLE unlisted_role NOLOGIN;

CREATE TABLE orders (id int PRIMARY KEY, tenant_id text NOT NULL, item text NOT NULL);
ALTER TABLE orders ENABLE ROW LEVEL SECURITY;
ALTER TABLE orders FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON orders
    USING (tenant_id = jwt_guard.tenant())
    WITH CHECK (tenant_id = jwt_guard.tenant());
GRANT SELECT, INSERT, UPDATE, DELETE ON orders TO app_user;
GRANT SELECT ON orders TO app_reader;
INSERT INTO orders
    SELECT g, CASE WHEN g % 4 = 0 THEN 'globex' ELSE 'acme' END, 'item ' || g
    FROM generate_series(1, 20000) AS g;
ANALYZE orders;

-- Keys, one per algorithm; material comes from the environment (generated per run).
\getenv key_hs256 KEY_HS256
\getenv key_hs384 KEY_HS384
\getenv key_hs512 KEY_HS512
\getenv key_rs256 KEY_RS256
\getenv key_rs384 KEY_RS384
\getenv key_rs512 KEY_RS512
\getenv key_ps256 KEY_PS256
\getenv key_ps384 KEY_PS384
\getenv key_ps512 KEY_PS512
\getenv key_es256 KEY_ES256
\getenv key_es384 KEY_ES384
\getenv key_eddsa KEY_EDDSA
SELECT jwt_guard.add_key('test-hs256', 'HS256', :'key_hs256');
SELECT jwt_guard.add_key('test-hs384', 'HS384', :'key_hs384');
SELECT jwt_guard.add_key('test-hs512', 'HS512', :'key_hs512');
SELECT jwt_guard.add_key('test-rs256', 'RS256', :'key_rs256');
SELECT jwt_guard.add_key('test-rs384', 'RS384', :'key_rs384');
SELECT jwt_guard.add_key('test-rs512', 'RS512', :'key_rs512');
SELECT jwt_guard.add_key('test-ps256', 'PS256', :'key_ps256');
SELECT jwt_guard.add_key('test-ps384', 'PS384', :'key_ps384');
SELECT jwt_guard.add_key('test-ps512', 'PS512', :'key_ps512');
SELECT jwt_guard.add_key('test-es256', 'ES256', :'key_es256');
SELECT jwt_guard.add_key('test-es384', 'ES384', :'key_es384', 'https://issuer.test');
SELECT jwt_guard.add_key('test-eddsa', 'EdDSA', :'key_eddsa');
\getenv jwks_good JWKS_GOOD
SELECT jwt_guard.import_jwks(:'jwks_good'::jsonb);
SELECT kid, alg, issuer, status, fingerprint ~ '^sha256:[0-9a-f]{24}$' AS fingerprint_ok
FROM jwt_guard.keys ORDER BY kid;

-- Test helpers: run a statement and show either 'ok' or SQLSTATE and message.
CREATE SCHEMA t;
GRANT USAGE ON SCHEMA t TO PUBLIC;
CREATE FUNCTION t.try(sql text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE sql;
    RETURN 'ok';
EXCEPTION WHEN others THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;
CREATE FUNCTION t.auth(tok text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE c jsonb;
BEGIN
    c := jwt_guard.authenticate(tok);
    RETURN 'ok: ' || current_user || ' sub=' || coalesce(c->>'sub', '-');
EXCEPTION WHEN others THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;
CREATE FUNCTION t.explain(q text) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE l text;
BEGIN
    FOR l IN EXECUTE 'EXPLAIN (COSTS OFF) ' || q LOOP RETURN NEXT l; END LOOP;
END $$;
CREATE FUNCTION t.verify(tok text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE c jsonb;
BEGIN
    c := jwt_guard.verify(tok);
    RETURN 'ok: sub=' || coalesce(c->>'sub', '-') || ' user=' || current_user;
EXCEPTION WHEN others THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;
-- Function bodies that change a setting at session level, for the isolation suite's commit check.
CREATE FUNCTION t.sneaky_plpgsql() RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('row_security', 'off', false);
    RETURN 'called';
END $$;
CREATE FUNCTION t.sneaky_sql() RETURNS text LANGUAGE sql AS $$ SELECT set_config('row_security', 'off', false) $$;
CREATE FUNCTION t.sneaky_set() RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    SET row_security = off;
    RETURN 'called';
END $$;

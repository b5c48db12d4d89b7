-- The role claim (docs/threat-model.md §2.4): allow-list, then the catalog. Every role below except
-- app_user and app_reader is listed in pg_jwt_guard.allowed_roles and must still be refused.
\set VERBOSITY terse
-- Roles whose powers are objects and privileges rather than attributes.
CREATE ROLE func_owner NOLOGIN;
CREATE FUNCTION public.owned_fn() RETURNS int LANGUAGE sql AS 'SELECT 1';
ALTER FUNCTION public.owned_fn() OWNER TO func_owner;
CREATE ROLE schema_owner NOLOGIN;
CREATE SCHEMA owned_schema AUTHORIZATION schema_owner;
CREATE ROLE trigger_holder NOLOGIN;
GRANT TRIGGER ON orders TO trigger_holder;
CREATE ROLE truncate_holder NOLOGIN;
GRANT TRUNCATE ON orders TO truncate_holder;
CREATE ROLE owner_member NOLOGIN;
GRANT func_owner TO owner_member;
-- MAINTAIN exists from PostgreSQL 17: LOCK in any mode, and planner statistics on 18.
CREATE ROLE maintain_holder NOLOGIN;
GRANT SELECT ON orders TO maintain_holder;
DO $$
BEGIN
    IF current_setting('server_version_num')::int >= 170000 THEN
        EXECUTE 'GRANT MAINTAIN ON orders TO maintain_holder';
    END IF;
END $$;
-- Owners of the database and of the extension (both listed in allowed_roles, neither a
-- superuser, so the catalog check is what refuses them). They own these only for the check below.
CREATE ROLE db_owner_role NOLOGIN;
CREATE ROLE ext_owner_role NOLOGIN;
SELECT datdba::regrole AS db_owner_before FROM pg_database WHERE datname = current_database() \gset
-- A second session for the cache tests below: the superuser through dblink, so that the session
-- under test never reconnects (a new backend would start with empty caches).
CREATE EXTENSION dblink;
CREATE FUNCTION t.other_session(sql text) RETURNS text LANGUAGE sql SECURITY DEFINER
    AS $$ SELECT r FROM dblink('dbname=' || current_database(), sql) AS d(r text) $$;
REVOKE ALL ON FUNCTION t.other_session(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION t.other_session(text) TO tester;
CREATE TABLE t.handed_over (x int);
\c - tester
SHOW pg_jwt_guard.allowed_roles;
\getenv tok_superuser TOK_ROLE_SUPERUSER
\getenv tok_postgres TOK_ROLE_POSTGRES
\getenv tok_bypassrls TOK_ROLE_BYPASSRLS
\getenv tok_createrole TOK_ROLE_CREATEROLE
\getenv tok_createdb TOK_ROLE_CREATEDB
\getenv tok_replication TOK_ROLE_REPLICATION
\getenv tok_monitor TOK_ROLE_MONITOR_MEMBER
\getenv tok_bypass_member TOK_ROLE_BYPASS_MEMBER
\getenv tok_table_owner TOK_ROLE_TABLE_OWNER
\getenv tok_login TOK_ROLE_LOGIN
\getenv tok_tester TOK_ROLE_TESTER
\getenv tok_func_owner TOK_ROLE_FUNC_OWNER
\getenv tok_schema_owner TOK_ROLE_SCHEMA_OWNER
\getenv tok_trigger_holder TOK_ROLE_TRIGGER_HOLDER
\getenv tok_owner_member TOK_ROLE_OWNER_MEMBER
\getenv tok_truncate_holder TOK_ROLE_TRUNCATE_HOLDER
\getenv tok_maintain_holder TOK_ROLE_MAINTAIN_HOLDER
\getenv tok_db_owner TOK_ROLE_DB_OWNER
\getenv tok_ext_owner TOK_ROLE_EXT_OWNER
\getenv tok_unlisted TOK_ROLE_UNLISTED
\getenv tok_missing TOK_ROLE_MISSING
\getenv tok_none TOK_ROLE_NONE
\getenv tok_public TOK_ROLE_PUBLIC
\getenv tok_case TOK_ROLE_CASE
\getenv tok_injection TOK_ROLE_INJECTION
\getenv tok_long TOK_ROLE_LONG
\getenv tok_number TOK_ROLE_NUMBER
\getenv tok_array TOK_ROLE_ARRAY
\getenv tok_nul TOK_ROLE_NUL
\getenv tok_pg TOK_ROLE_PG
\getenv tok_no_role TOK_NO_ROLE
\getenv tok_reader TOK_READER_ACME
SELECT t.auth(:'tok_superuser');
SELECT t.auth(:'tok_postgres');
SELECT t.auth(:'tok_bypassrls');
SELECT t.auth(:'tok_createrole');
SELECT t.auth(:'tok_createdb');
SELECT t.auth(:'tok_replication');
SELECT t.auth(:'tok_monitor');
SELECT t.auth(:'tok_bypass_member');
SELECT t.auth(:'tok_table_owner');
SELECT t.auth(:'tok_login');
SELECT t.auth(:'tok_tester');
SELECT t.auth(:'tok_func_owner');
SELECT t.auth(:'tok_schema_owner');
SELECT t.auth(:'tok_trigger_holder');
SELECT t.auth(:'tok_owner_member');
SELECT t.auth(:'tok_truncate_holder');
-- Refused where the privilege exists (17 and later); before 17 the role holds only SELECT.
SELECT CASE WHEN current_setting('server_version_num')::int >= 170000
            THEN t.auth(:'tok_maintain_holder') LIKE '42501: %holds the MAINTAIN privilege%'
            ELSE t.auth(:'tok_maintain_holder') LIKE 'ok: maintain_holder %' END AS maintain_checked;
-- TRUNCATE ignores row level security: a role may hold it, a token may not use it on such a table.
BEGIN;
SELECT jwt_guard.authenticate(:'tok_truncate_holder') ->> 'role' AS role;
TRUNCATE orders;
ROLLBACK;
SELECT t.auth(:'tok_unlisted');
SELECT t.auth(:'tok_missing');
SELECT t.auth(:'tok_none');
SELECT t.auth(:'tok_public');
SELECT t.auth(:'tok_case');
SELECT t.auth(:'tok_injection');
SELECT t.auth(:'tok_long');
SELECT t.auth(:'tok_number');
SELECT t.auth(:'tok_array');
SELECT t.auth(:'tok_nul');
SELECT t.auth(:'tok_pg');
-- No role claim and no default_role: refused.
SELECT t.auth(:'tok_no_role');
-- An allowed role works; the login role is a member of none of them.
SELECT t.auth(:'tok_reader');
SELECT count(*) AS memberships FROM pg_auth_members WHERE member = 'tester'::regrole;
-- The verdict is cached per backend, but a change that another session commits reaches this
-- open session at its next authenticate(), on the same backend: an attribute, a membership, an
-- ownership, the ownership of the database and of the extension.
SELECT pg_backend_pid() AS roles_backend \gset
BEGIN;
SELECT jwt_guard.authenticate(:'tok_reader') ->> 'role' AS role;
COMMIT;
SELECT t.auth(:'tok_reader');
SELECT t.other_session('ALTER ROLE app_reader CREATEDB');
SELECT t.auth(:'tok_reader');
SELECT t.other_session('ALTER ROLE app_reader NOCREATEDB');
SELECT t.auth(:'tok_reader');
SELECT t.other_session('GRANT bypass_role TO app_reader');
SELECT t.auth(:'tok_reader');
SELECT t.other_session('REVOKE bypass_role FROM app_reader');
SELECT t.auth(:'tok_reader');
SELECT t.other_session('ALTER TABLE t.handed_over OWNER TO app_reader');
SELECT t.auth(:'tok_reader');
SELECT t.other_session('ALTER TABLE t.handed_over OWNER TO postgres');
SELECT t.auth(:'tok_reader');
-- Other powers a change can bring: TRIGGER (also through PUBLIC), and the ownership of a
-- function, a type or a schema. Each is refused from the next authenticate() on, and the
-- refusal is lifted when the power goes.
SELECT t.other_session('GRANT TRIGGER ON t.handed_over TO app_reader');
SELECT t.auth(:'tok_reader');
SELECT t.other_session('REVOKE TRIGGER ON t.handed_over FROM app_reader');
SELECT t.auth(:'tok_reader');
SELECT t.other_session('GRANT TRIGGER ON t.handed_over TO PUBLIC');
SELECT t.auth(:'tok_reader');
SELECT t.other_session('REVOKE TRIGGER ON t.handed_over FROM PUBLIC');
SELECT t.auth(:'tok_reader');
SELECT t.other_session($$CREATE FUNCTION t.gift() RETURNS int LANGUAGE sql AS 'SELECT 1'$$);
SELECT t.other_session('ALTER FUNCTION t.gift() OWNER TO app_reader');
SELECT t.auth(:'tok_reader');
SELECT t.other_session('DROP FUNCTION t.gift()');
SELECT t.auth(:'tok_reader');
SELECT t.other_session($$CREATE TYPE t.gift_kind AS ENUM ('a')$$);
SELECT t.other_session('ALTER TYPE t.gift_kind OWNER TO app_reader');
SELECT t.auth(:'tok_reader');
SELECT t.other_session('DROP TYPE t.gift_kind');
SELECT t.auth(:'tok_reader');
SELECT t.other_session('CREATE SCHEMA gift AUTHORIZATION app_reader');
SELECT t.auth(:'tok_reader');
SELECT t.other_session('DROP SCHEMA gift');
SELECT t.auth(:'tok_reader');
-- A key retired by a write that fires no ordinary trigger (session_replication_role = replica,
-- as a logical replication subscriber applies rows) still reaches the caches.
SELECT t.other_session($$SET session_replication_role = replica; UPDATE jwt_guard.key_store SET status = 'retired', retired = now() WHERE kid = 'test-es256'; RESET session_replication_role$$);
SELECT t.auth(:'tok_reader');
SELECT t.other_session($$SET session_replication_role = replica; UPDATE jwt_guard.key_store SET status = 'active', retired = NULL WHERE kid = 'test-es256'; RESET session_replication_role$$);
SELECT t.auth(:'tok_reader');
-- Changes that give no token role a power keep the verified token cached: another session's
-- temporary table, a new function and type, a grant of SELECT. Handing the extension to
-- app_reader by a direct catalog update sends no invalidation, which makes the cache visible
-- here: the token is still served from it until a change that can concern a token role (here
-- one of the extension's tables) makes the backend check the role again.
SELECT t.other_session($$UPDATE pg_extension SET extowner = 'app_reader'::regrole WHERE extname = 'pg_jwt_guard'$$);
SELECT t.auth(:'tok_reader');
SELECT t.other_session('CREATE TEMP TABLE scratch (x int)');
SELECT t.other_session($$CREATE FUNCTION t.unrelated() RETURNS int LANGUAGE sql AS 'SELECT 1'$$);
SELECT t.other_session($$CREATE TYPE t.unrelated_kind AS ENUM ('a')$$);
SELECT t.other_session('GRANT SELECT ON t.handed_over TO app_reader');
SELECT t.auth(:'tok_reader');
SELECT t.other_session($$SELECT jwt_guard.set_issuer('https://unrelated.test')$$);
SELECT t.auth(:'tok_reader');
SELECT t.other_session(format($$UPDATE pg_extension SET extowner = %L::regrole WHERE extname = 'pg_jwt_guard'$$, :'db_owner_before'));
SELECT t.other_session($$SELECT jwt_guard.drop_issuer('https://unrelated.test')::text$$);
SELECT t.auth(:'tok_reader');
SELECT t.other_session('DROP FUNCTION t.unrelated(); DROP TYPE t.unrelated_kind; REVOKE SELECT ON t.handed_over FROM app_reader');
-- Even in a transaction that was open (REPEATABLE READ, snapshot taken) before the change.
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT t.verify(:'tok_reader');
SELECT t.other_session('ALTER ROLE app_reader CREATEDB');
SELECT t.auth(:'tok_reader');
ROLLBACK;
SELECT t.other_session('ALTER ROLE app_reader NOCREATEDB');
SELECT t.auth(:'tok_reader');
-- The owner of this database.
SELECT t.auth(:'tok_db_owner');
SELECT t.other_session(format('ALTER DATABASE %I OWNER TO db_owner_role', current_database()));
SELECT t.auth(:'tok_db_owner');
SELECT t.other_session(format('ALTER DATABASE %I OWNER TO %I', current_database(), :'db_owner_before'));
SELECT t.auth(:'tok_db_owner');
-- The owner of pg_jwt_guard. No statement hands an extension to a role that owns nothing else
-- (REASSIGN OWNED moves its objects too), so the catalog row is changed, and put back, directly.
-- Such an update sends no invalidation, so the role is checked here for the first time.
SELECT t.other_session($$UPDATE pg_extension SET extowner = 'ext_owner_role'::regrole WHERE extname = 'pg_jwt_guard'$$);
SELECT t.auth(:'tok_ext_owner');
SELECT t.other_session(format($$UPDATE pg_extension SET extowner = %L::regrole WHERE extname = 'pg_jwt_guard'$$, :'db_owner_before'));
SELECT pg_backend_pid() = :roles_backend AS same_backend;
-- The settings cannot be loosened by the login role.
SELECT t.try($$SET pg_jwt_guard.allowed_roles = 'postgres'$$);
SELECT t.try($$SELECT set_config('pg_jwt_guard.default_role', 'app_user', false)$$);
SELECT t.try($$SET pg_jwt_guard.issuers = 'https://evil.test'$$);
SELECT t.try($$SET pg_jwt_guard.max_lifetime = 999999$$);
-- default_role applies to tokens without a role claim (set here as superuser).
\c - postgres
ALTER ROLE tester SET pg_jwt_guard.default_role = 'app_reader';
SELECT t.try($$SET pg_jwt_guard.allowed_roles = 'app_user, "postgres'$$);
SELECT t.try($$SET pg_jwt_guard.default_role = 'pg_monitor'$$);
SELECT t.try($$SET pg_jwt_guard.default_role = 'app_user, app_reader'$$);
\c - tester
SHOW pg_jwt_guard.default_role;
SELECT t.auth(:'tok_no_role');
\c - postgres
ALTER ROLE tester RESET pg_jwt_guard.default_role;
-- Role lists (Keycloak, Cognito, Okta, Entra): the first listed role on the allow-list, in the
-- token's order; or the role asked for, which the token must list.
\c - postgres
CREATE FUNCTION t.auth_as(tok text, r text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE c jsonb;
BEGIN
    c := jwt_guard.authenticate(tok, r);
    RETURN 'ok: ' || current_user || ' sub=' || coalesce(c->>'sub', '-');
EXCEPTION WHEN others THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;
\getenv tok_role_list TOK_ROLE_LIST
\getenv tok_role_list_none TOK_ROLE_LIST_NONE
\getenv tok_keycloak TOK_ROLE_KEYCLOAK
\c - tester
SELECT t.auth(:'tok_role_list');
SELECT t.auth_as(:'tok_role_list', 'app_user');
SELECT t.auth_as(:'tok_role_list', 'offline_access');
SELECT t.auth_as(:'tok_role_list', 'su_role');
SELECT t.auth_as(:'tok_role_list', NULL);
SELECT t.auth(:'tok_role_list_none');
SELECT t.auth_as(:'tok_reader', 'app_reader');
SELECT t.auth_as(:'tok_reader', 'app_user');
SELECT jwt_guard.verify(:'tok_role_list', 'app_user') ->> 'sub' AS verified_sub;
-- A nested role list through a JSON Pointer, as Keycloak's realm_access.roles.
\c - postgres
ALTER ROLE tester SET pg_jwt_guard.role_claim = '/realm_access/roles';
\c - tester
SELECT t.auth(:'tok_keycloak');
\c - postgres
ALTER ROLE tester RESET pg_jwt_guard.role_claim;
-- An empty allow-list says so.
ALTER ROLE tester SET pg_jwt_guard.allowed_roles = '';
\c - tester
SELECT t.auth(:'tok_reader');
\c - postgres
ALTER ROLE tester RESET pg_jwt_guard.allowed_roles;
DROP FUNCTION t.other_session(text);
DROP TABLE t.handed_over;
DROP EXTENSION dblink;
-- Settings changed inside one backend apply from the next verification on, also to a token
-- this backend has verified (and cached) before: SET, RESET, and a SET LOCAL undone by ROLLBACK.
\getenv tok_acme TOK_TENANT_ACME
CREATE FUNCTION t.verify_now(tok text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    RETURN 'ok: sub=' || (jwt_guard.verify(tok) ->> 'sub');
EXCEPTION WHEN others THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;
SELECT t.verify_now(:'tok_acme');
BEGIN;
SET LOCAL pg_jwt_guard.max_lifetime = 60;
SELECT t.verify_now(:'tok_acme');
ROLLBACK;
SELECT t.verify_now(:'tok_acme');
SET pg_jwt_guard.audience = 'billing-api';
SELECT t.verify_now(:'tok_acme');
RESET pg_jwt_guard.audience;
SELECT t.verify_now(:'tok_acme');
SET pg_jwt_guard.role_claim = 'sub';
SELECT t.verify_now(:'tok_acme');
RESET pg_jwt_guard.role_claim;
SELECT t.verify_now(:'tok_acme');
SET pg_jwt_guard.leeway = 0;
SET pg_jwt_guard.max_token_bytes = 256;
SELECT t.verify_now(:'tok_acme');
RESET pg_jwt_guard.max_token_bytes;
RESET pg_jwt_guard.leeway;
SELECT t.verify_now(:'tok_acme');
DROP FUNCTION t.verify_now(text);
-- SET SESSION AUTHORIZATION makes another role the session's login role, which the role checks
-- refuse: a verdict or a token cached before the change is not used after it.
SELECT t.auth(:'tok_reader');
SET SESSION AUTHORIZATION app_reader;
SELECT t.auth(:'tok_reader');
RESET SESSION AUTHORIZATION;
SELECT t.auth(:'tok_reader');

-- What a locked session may do, as allow-lists (README "Isolation"): before a token, the login
-- role may run only what cannot plant anything for the next client of a pooled backend; under a
-- token, nothing may outlive the transaction. Every refusal is 42501 and names the statement.
\set VERBOSITY terse
\getenv tok_acme TOK_TENANT_ACME
\getenv tok_globex TOK_TENANT_GLOBEX
\getenv tok_acmecorp TOK_TENANT_ACMECORP
\getenv tok_acmecorpx TOK_TENANT_ACMECORPX
\getenv tok_42 TOK_TENANT_42
\getenv tok_42_0 TOK_TENANT_42_0
\getenv tok_042 TOK_TENANT_042
\getenv tok_tenant_number TOK_TENANT_NUMBER
\getenv tok_deep_ok TOK_DEEP_OK
\getenv tok_deep_too TOK_DEEP_TOO
\getenv tok_deep_100 TOK_DEEP_100
\getenv tok_retire_open TOK_RETIRE_OPEN
\getenv key_retire_open KEY_RETIRE_OPEN
\getenv tok_reader TOK_READER_ACME
-- Superuser: tables whose tenant column types compare loosely, partitions and children.
CREATE TABLE tenant_varchar (id int, tenant varchar(9));
INSERT INTO tenant_varchar VALUES (1, 'acme-corp');
CREATE TABLE tenant_char (id int, tenant char(12));
INSERT INTO tenant_char VALUES (1, 'acme');
CREATE TABLE tenant_numeric (id int, tenant numeric(6,0));
INSERT INTO tenant_numeric VALUES (1, 42);
CREATE TABLE parted (id int, tenant text) PARTITION BY LIST (tenant);
CREATE TABLE parted_acme PARTITION OF parted FOR VALUES IN ('acme');
CREATE TABLE parted_globex PARTITION OF parted FOR VALUES IN ('globex');
INSERT INTO parted VALUES (1, 'acme'), (2, 'globex');
CREATE TABLE inh_parent (id int, tenant text);
INSERT INTO inh_parent VALUES (1, 'acme');
SELECT jwt_guard.protect_table('tenant_varchar', 'tenant');
SELECT jwt_guard.protect_table('tenant_char', 'tenant');
SELECT jwt_guard.protect_table('tenant_numeric', 'tenant');
SELECT jwt_guard.protect_table('parted', 'tenant');
SELECT jwt_guard.protect_table('inh_parent', 'tenant');
-- Children that arrive after protect_table(): created as a partition, attached, inherited.
CREATE TABLE parted_initech (id int, tenant text);
INSERT INTO parted_initech VALUES (3, 'initech');
ALTER TABLE parted ATTACH PARTITION parted_initech FOR VALUES IN ('initech');
CREATE TABLE parted_hooli PARTITION OF parted FOR VALUES IN ('hooli');
INSERT INTO parted VALUES (4, 'hooli');
CREATE TABLE inh_child () INHERITS (inh_parent);
INSERT INTO inh_child VALUES (2, 'globex');
SELECT c.relname, c.relrowsecurity AS rls, c.relforcerowsecurity AS force
FROM pg_class c JOIN pg_policy p ON p.polrelid = c.oid AND p.polname = 'jwt_guard_tenant'
WHERE c.relname ~ '^(tenant_|parted|inh_)' ORDER BY 1;
GRANT SELECT ON tenant_varchar, tenant_char, tenant_numeric, parted, parted_acme, parted_globex,
    parted_initech, parted_hooli, inh_parent, inh_child TO app_user;
-- A helper owned by the superuser: a locked session may not call it before a token.
CREATE FUNCTION public.spy(text) RETURNS boolean LANGUAGE sql AS 'SELECT true';
SELECT jwt_guard.add_key('retire-open', 'HS256', :'key_retire_open');
CREATE EXTENSION IF NOT EXISTS dblink;
-- The first random() after setseed(0.1234), to show a planted seed does not reach the next client.
SELECT setseed(0.1234);
SELECT random() AS seeded_random \gset
CREATE SEQUENCE t.seq;
GRANT USAGE ON SEQUENCE t.seq TO app_user;
-- A domain whose CHECK reads the tenant: its expression is cached outside any plan.
CREATE DOMAIN own_tenant AS text CHECK (VALUE = jwt_guard.tenant());

\c - authenticator
-- Before a token: what stays allowed.
SELECT 1 AS health_check;
SELECT now() IS NOT NULL AS clock, version() LIKE 'PostgreSQL%' AS version, pg_backend_pid() > 0 AS pid,
       pg_is_in_recovery() AS in_recovery, abs(-2) + 1 AS immutable_builtins;
SELECT current_user, session_user, jwt_guard.is_authenticated(), jwt_guard.tenant();
SHOW search_path;
SET application_name = 'isolation-suite';
SET DateStyle = 'ISO, YMD';
SET TimeZone = 'UTC';
SET extra_float_digits = 3;
SET standard_conforming_strings = on;
RESET search_path;
RESET ALL;
BEGIN;
SET TRANSACTION ISOLATION LEVEL REPEATABLE READ;
SET LOCAL statement_timeout = '5s';
SELECT set_config('work_mem', '8MB', true) AS local_setting;
COMMIT;
DEALLOCATE ALL;
DISCARD ALL;
-- Before a token: reading any table, the catalogs included, is refused.
SELECT count(*) FROM orders;
SELECT count(*) FROM pg_stat_activity;
SELECT count(*) FROM pg_class;
SELECT count(*) FROM jwt_guard.keys;
-- Functions other than the extension's, immutable built-ins and a few harmless ones.
SELECT pg_stat_get_backend_activity(1);
SELECT pg_sleep(0);
SELECT pg_advisory_lock(1);
SELECT lo_create(0);
SELECT public.spy('x');
SELECT pg_read_file('postgresql.conf');
SELECT pg_terminate_backend(pg_backend_pid());
SELECT pg_cancel_backend(pg_backend_pid());
-- Planting: temporary objects shadowing application tables and built-in types.
CREATE TEMP TABLE orders (id int, tenant_id text, item text);
CREATE TEMP VIEW orders AS SELECT 1 AS id;
CREATE DOMAIN pg_temp.text AS pg_catalog.text CHECK (VALUE IS NOT NULL);
CREATE FUNCTION pg_temp.spy(text) RETURNS boolean LANGUAGE sql AS 'SELECT true';
CREATE TEMP SEQUENCE seq;
CREATE TABLE public.planted (x int);
-- Other statements.
DO $$ BEGIN NULL; END $$;
COPY (SELECT 1) TO STDOUT;
PREPARE p AS SELECT 1;
LISTEN channel;
EXPLAIN SELECT 1;
ALTER ROLE authenticator SET search_path = 'pg_temp, public';
-- Session-level settings outside the client settings, by every route.
SET search_path = pg_temp, public;
SET default_transaction_read_only = on;
SET row_security = off;
SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY;
SET IntervalStyle = 'sql_standard';
SET extra_float_digits = -15;
SELECT current_setting('extra_float_digits') AS extra_float_digits;
SELECT set_config('search_path', 'pg_temp, public', false);
BEGIN;
SELECT set_config('statement_timeout', '1ms', false);
COMMIT;
-- Nothing of it stuck.
SELECT current_setting('search_path') AS search_path, current_setting('default_transaction_read_only') AS read_only,
       current_setting('row_security') AS row_security, current_setting('statement_timeout') AS statement_timeout,
       current_setting('application_name') AS application_name;

-- Under a token: temporary tables dropped at commit are the one object allowed.
BEGIN;
SELECT jwt_guard.authenticate(:'tok_acme') ->> 'sub' AS sub;
CREATE TEMP TABLE scratch (x int PRIMARY KEY) ON COMMIT DROP;
INSERT INTO scratch VALUES (1);
SELECT t.try('CREATE TEMP TABLE keep (x int)');
SELECT t.try('CREATE TEMP TABLE keep2 AS SELECT 1 AS x');
SELECT t.try('SELECT 1 AS x INTO TEMP keep3');
SELECT t.try('CREATE TEMP VIEW v AS SELECT 1 AS x');
SELECT t.try('CREATE TEMP SEQUENCE s');
SELECT t.try($$CREATE FUNCTION pg_temp.f() RETURNS int LANGUAGE sql AS 'SELECT 1'$$);
SELECT t.try('CREATE DOMAIN pg_temp.text AS pg_catalog.text');
SELECT t.try('CREATE TRIGGER tr BEFORE INSERT ON orders FOR EACH ROW EXECUTE FUNCTION suppress_redundant_updates_trigger()');
SELECT t.try('CREATE RULE r AS ON INSERT TO orders DO INSTEAD NOTHING');
SELECT t.try('CREATE POLICY everything ON orders USING (true)');
SELECT t.try('ALTER TABLE orders ADD COLUMN x int');
SELECT t.try('DROP TABLE orders');
SELECT t.try('DROP TABLE scratch');
SELECT t.try('PREPARE p AS SELECT 1');
SELECT t.try('LISTEN channel');
SELECT t.try('DECLARE c CURSOR WITH HOLD FOR SELECT 1');
SELECT t.try('SET search_path = pg_temp, public');
SELECT t.try('SELECT pg_advisory_lock(1)');
SELECT t.try('SELECT lo_create(0)');
SELECT t.try($$SELECT lo_from_bytea(0, 'x')$$);
-- What stays allowed under a token.
SELECT t.try('SET LOCAL search_path = public');
SELECT t.try($$SELECT set_config('work_mem', '8MB', true)$$);
SELECT t.try('SELECT pg_advisory_xact_lock(1)');
SELECT t.try('NOTIFY channel');
SELECT t.try('SET application_name = ''token-client''');
SELECT count(*) AS own_rows FROM orders;
COMMIT;
-- Sequence state is forgotten with the transaction: the next client cannot read what was drawn.
BEGIN;
SELECT jwt_guard.authenticate(:'tok_acme') ->> 'sub' AS sub;
SELECT t.try('SELECT nextval(''t.seq'') > 0');
SELECT currval('t.seq') > 0 AS currval_in_own_transaction;
COMMIT;
BEGIN;
SELECT jwt_guard.authenticate(:'tok_globex') ->> 'sub' AS sub;
SELECT t.try('SELECT currval(''t.seq'')');
SELECT t.try('SELECT lastval()');
ROLLBACK;
-- random()'s state is reseeded when a transaction of a locked session ends.
BEGIN;
SELECT jwt_guard.authenticate(:'tok_acme') ->> 'sub' AS sub;
SELECT t.try('SELECT setseed(0.1234)');
COMMIT;
BEGIN;
SELECT jwt_guard.authenticate(:'tok_globex') ->> 'sub' AS sub;
SELECT random() <> :seeded_random AS not_the_planted_sequence;
ROLLBACK;
-- Backend-wide state a transaction could leave or read: temp_buffers, unflushed counters, dblink.
BEGIN;
SET LOCAL temp_buffers = '1MB';
ROLLBACK;
BEGIN;
SELECT jwt_guard.authenticate(:'tok_acme') ->> 'sub' AS sub;
SELECT t.try('SET LOCAL temp_buffers = ''1MB''');
SELECT t.try('SELECT count(*) FROM pg_stat_xact_user_tables');
SELECT t.try($$SELECT pg_stat_get_xact_numscans('orders'::regclass)$$);
SELECT t.try($$SELECT dblink_connect('kept', 'dbname=postgres')$$);
ROLLBACK;
-- A session-level setting changed by a function under a token is refused at COMMIT.
BEGIN;
SELECT jwt_guard.authenticate(:'tok_acme') ->> 'sub' AS sub;
SELECT set_config('row_security', 'off', false) AS sneaky;
COMMIT;
SELECT current_setting('row_security') AS row_security, current_user;
-- So is one changed inside a function body (PL/pgSQL, an inlined SQL function, a SET statement),
-- and one changed before the token in the same transaction.
BEGIN;
SELECT jwt_guard.authenticate(:'tok_acme') ->> 'sub' AS sub;
SELECT t.sneaky_plpgsql();
COMMIT;
SELECT current_setting('row_security') AS row_security;
BEGIN;
SELECT jwt_guard.authenticate(:'tok_acme') ->> 'sub' AS sub;
SELECT t.sneaky_sql();
COMMIT;
SELECT current_setting('row_security') AS row_security;
BEGIN;
SELECT jwt_guard.authenticate(:'tok_acme') ->> 'sub' AS sub;
SELECT t.sneaky_set();
COMMIT;
SELECT current_setting('row_security') AS row_security;
BEGIN;
SELECT set_config('row_security', 'off', false) AS before_token;
SELECT jwt_guard.authenticate(:'tok_acme') ->> 'sub' AS sub;
COMMIT;
SELECT current_setting('row_security') AS row_security;
-- A setting changed and set back to its value at BEGIN leaves nothing behind (asyncpg turns jit
-- off and on around type lookups): accepted. Set back to anything else, still refused.
BEGIN;
SELECT jwt_guard.authenticate(:'tok_acme') ->> 'sub' AS sub;
SELECT set_config('jit', 'off', false) AS off, set_config('jit', 'on', false) AS back;
SELECT set_config('search_path', 'public', false) AS moved;
SELECT set_config('search_path', '"$user", public', false) AS back;
SET LOCAL work_mem = '1MB';
COMMIT;
SELECT current_setting('jit') AS jit, current_setting('search_path') AS search_path;
BEGIN;
SELECT jwt_guard.authenticate(:'tok_acme') ->> 'sub' AS sub;
SELECT set_config('jit', 'off', false) AS off, set_config('jit', 'on', false) AS back;
SELECT set_config('enable_seqscan', 'off', false) AS off;
SET LOCAL enable_seqscan = on;
COMMIT;
SELECT current_setting('jit') AS jit, current_setting('enable_seqscan') AS enable_seqscan;

-- Tenants compare exactly, whatever the column type.
BEGIN;
SELECT jwt_guard.authenticate(:'tok_acmecorpx') ->> 'tenant_id' AS tenant;
SELECT count(*) AS varchar_rows FROM tenant_varchar;
SELECT jwt_guard.authenticate(:'tok_acmecorp') ->> 'tenant_id' AS tenant;
SELECT count(*) AS varchar_rows FROM tenant_varchar;
SELECT jwt_guard.authenticate(:'tok_acme') ->> 'tenant_id' AS tenant;
SELECT count(*) AS char_rows FROM tenant_char;
SELECT jwt_guard.authenticate(:'tok_42') ->> 'tenant_id' AS tenant;
SELECT count(*) AS numeric_rows FROM tenant_numeric;
SELECT jwt_guard.authenticate(:'tok_42_0') ->> 'tenant_id' AS tenant;
SELECT count(*) AS numeric_rows FROM tenant_numeric;
SELECT jwt_guard.authenticate(:'tok_042') ->> 'tenant_id' AS tenant;
SELECT count(*) AS numeric_rows FROM tenant_numeric;
COMMIT;
-- The domain's CHECK sees each identity's own tenant, in one backend, across transactions.
BEGIN;
SELECT jwt_guard.authenticate(:'tok_acme') ->> 'tenant_id' AS tenant;
SELECT 'acme'::own_tenant AS accepted;
COMMIT;
BEGIN;
SELECT jwt_guard.authenticate(:'tok_globex') ->> 'tenant_id' AS tenant;
SELECT 'acme'::own_tenant AS accepted;
ROLLBACK;
-- A number is not a tenant: 42 and "42" must not name the same rows.
SELECT jwt_guard.authenticate(:'tok_tenant_number');
-- Every partition and child is protected, including those that arrived later.
BEGIN;
SELECT jwt_guard.authenticate(:'tok_acme') ->> 'tenant_id' AS tenant;
SELECT (SELECT count(*) FROM parted) AS parted, (SELECT count(*) FROM parted_acme) AS acme,
       (SELECT count(*) FROM parted_globex) AS globex, (SELECT count(*) FROM parted_initech) AS initech,
       (SELECT count(*) FROM parted_hooli) AS hooli, (SELECT count(*) FROM inh_parent) AS inh_parent,
       (SELECT count(*) FROM inh_child) AS inh_child;
COMMIT;

-- Claims are nested at most 32 levels; what verifies is what the identity holds.
SELECT jwt_guard.verify(:'tok_deep_too');
SELECT jwt_guard.authenticate(:'tok_deep_100');
BEGIN;
SELECT jwt_guard.verify(:'tok_deep_ok') = jwt_guard.authenticate(:'tok_deep_ok') AS same_claims;
SELECT jwt_guard.claims() = jwt_guard.verify(:'tok_deep_ok') AS identity_matches,
       jwt_guard.claim('/nest/n/n/n/n/n/n/n/n/n/n/n/n/n/n/n/n/n/n/n/n/n/n/n/n/n/n/n/n/n/n') AS deepest,
       jwt_guard.is_authenticated();
COMMIT;

-- retire_key() and role changes count at the next authenticate(), even in a transaction that
-- was open before they committed (REPEATABLE READ keeps its snapshot; the checks do not).
\c - postgres
\set VERBOSITY terse
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT jwt_guard.verify(:'tok_retire_open') ->> 'sub' AS sub;
SELECT done FROM dblink('dbname=' || current_database(),
    $$SELECT jwt_guard.retire_key('retire-open')::text$$) AS r(done text);
SELECT jwt_guard.verify(:'tok_retire_open') ->> 'sub' AS sub;
ROLLBACK;
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT jwt_guard.verify(:'tok_reader') ->> 'role' AS role;
SELECT dblink_exec('dbname=' || current_database(), 'ALTER ROLE app_reader CREATEDB');
SELECT jwt_guard.verify(:'tok_reader') ->> 'role' AS role;
ROLLBACK;
ALTER ROLE app_reader NOCREATEDB;
SELECT jwt_guard.verify(:'tok_reader') ->> 'role' AS role;

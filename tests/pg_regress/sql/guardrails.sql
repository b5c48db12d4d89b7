-- The permissions claim as a command whitelist (pg_jwt_guard.enforce_permissions), named
-- actions, and protect_table. The whitelist only narrows: GRANTs and RLS still apply.
\set VERBOSITY terse
CREATE SCHEMA sales;
GRANT USAGE ON SCHEMA sales TO app_user;
CREATE TABLE sales.orders (id int, tenant_id text);
GRANT SELECT ON sales.orders TO app_user;
CREATE TABLE notes (id int, tenant_id text, body text);
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON notes TO app_user;
INSERT INTO notes VALUES (1, 'acme', 'a1'), (2, 'globex', 'g1');
CREATE TABLE secrets (x int);
GRANT SELECT ON secrets TO app_user;
CREATE VIEW notes_view AS SELECT id, body FROM notes;
GRANT SELECT ON notes_view TO app_user;
CREATE VIEW notes_invoker WITH (security_invoker = true) AS SELECT id, body FROM notes;
GRANT SELECT ON notes_invoker TO app_user;
CREATE TABLE docs (id serial PRIMARY KEY, tenant_id uuid NOT NULL, body text);
CREATE INDEX docs_tenant_idx ON docs (tenant_id);
GRANT SELECT, INSERT, UPDATE ON docs TO app_user;
GRANT USAGE ON SEQUENCE docs_id_seq TO app_user;
INSERT INTO docs (tenant_id, body)
    SELECT CASE WHEN g % 2 = 0 THEN '11111111-1111-1111-1111-111111111111'::uuid
                ELSE '22222222-2222-2222-2222-222222222222'::uuid END, 'doc ' || g
    FROM generate_series(1, 2000) AS g;
ANALYZE docs;
\getenv tok_read TOK_PERM_READ
\getenv tok_write TOK_PERM_WRITE
\getenv tok_insert_only TOK_PERM_INSERT_ONLY
\getenv tok_none TOK_PERM_NONE
\getenv tok_upper TOK_PERM_UPPER
\getenv tok_malformed TOK_PERM_MALFORMED
\getenv tok_malformed_columns TOK_PERM_MALFORMED_COLUMNS
\getenv tok_not_array TOK_PERM_NOT_ARRAY
\getenv tok_invoker TOK_PERM_INVOKER
\getenv tok_invoker_full TOK_PERM_INVOKER_FULL
\getenv tok_doc_a TOK_DOC_A
\getenv tok_doc_b TOK_DOC_B
-- Enforcement is off by default: GRANTs and RLS alone decide, so a read-only list does not stop an insert.
\c - authenticator
SHOW pg_jwt_guard.enforce_permissions;
BEGIN;
SELECT jwt_guard.authenticate(:'tok_read') ->> 'sub' AS sub;
SELECT t.try($$INSERT INTO notes VALUES (3, 'acme', 'not checked')$$);
ROLLBACK;
\c - postgres
ALTER ROLE authenticator SET pg_jwt_guard.enforce_permissions = on;
\c - authenticator
SHOW pg_jwt_guard.enforce_permissions;
-- A permissions claim that is not an array refuses the token (28000); entries that do not parse do not.
SELECT jwt_guard.authenticate(:'tok_malformed') -> 'permissions' AS accepted_permissions;
SELECT jwt_guard.authenticate(:'tok_malformed_columns') -> 'permissions' AS accepted_permissions;
SELECT jwt_guard.authenticate(:'tok_not_array');
-- Entries that do not parse as table grants are named actions: they grant no table.
BEGIN;
SELECT jwt_guard.authenticate(:'tok_malformed') ->> 'sub' AS sub;
SELECT jwt_guard.can('select:orders;drop table orders') AS is_an_action;
SELECT t.try('SELECT count(*) FROM orders');
ROLLBACK;
-- A read-only token: reads pass, writes are refused, named actions are exact.
BEGIN;
SELECT jwt_guard.authenticate(:'tok_read') ->> 'sub' AS sub;
SELECT count(*) FROM orders;
-- notes has no row level security, so this acme token reads globex's row too: the whitelist
-- narrows which commands and columns a token may use, it never filters rows (RLS does;
-- protect_table() below adds the tenant policy). The COPY below shows both tenants for the same
-- reason.
SELECT id, body FROM notes ORDER BY id;
SELECT t.try($$INSERT INTO orders VALUES (200001, 'acme', 'x')$$);
SELECT t.try($$UPDATE orders SET item = 'x' WHERE id = 1$$);
SELECT t.try($$DELETE FROM orders WHERE id = 1$$);
-- Subqueries and CTEs reach the unlisted table secrets.
SELECT t.try($$SELECT count(*) FROM orders WHERE id IN (SELECT x FROM secrets)$$);
SELECT t.try($$WITH s AS (SELECT x FROM secrets) SELECT count(*) FROM s$$);
-- A bare name means public: select:orders does not cover sales.orders.
SELECT t.try('SELECT count(*) FROM sales.orders');
-- A view is checked like PostgreSQL checks it: the view as the caller, its tables as the owner.
SELECT t.try('SELECT count(*) FROM notes_view');
SELECT jwt_guard.can('refund') AS refund, jwt_guard.can('Refund') AS refund_case, jwt_guard.can('select:orders') AS grant_is_not_action;
SELECT jwt_guard.require('refund');
SELECT t.try($$SELECT jwt_guard.require('delete-everything')$$);
SELECT t.try('SELECT jwt_guard.require(NULL)'), jwt_guard.can(NULL) AS can_null;
-- Utility statements other than the harmless ones are refused.
SELECT t.try('CREATE TABLE pg_temp.x (i int)');
SELECT t.try('LOCK TABLE orders');
SELECT t.try('GRANT SELECT ON orders TO PUBLIC');
SELECT t.try('ANALYZE orders');
-- TRUNCATE that the GRANT allows (app_user holds TRUNCATE on notes) but the token does not list:
-- refused by the whitelist alone.
SELECT t.try('TRUNCATE notes');
SELECT count(*) AS notes_kept FROM notes;
-- TRUNCATE that neither the GRANT (app_user holds only SELECT on secrets) nor the token allows:
-- the whitelist's message, because its check runs before PostgreSQL's own.
SELECT t.try('TRUNCATE secrets');
SELECT t.try('EXPLAIN ANALYZE CREATE TABLE pg_temp.y AS SELECT 1 AS x');
SAVEPOINT s;
RELEASE SAVEPOINT s;
SHOW pg_jwt_guard.enforce_permissions;
ROLLBACK;
-- A writing token: update only the listed column, delete, COPY and TRUNCATE by their own entries.
BEGIN;
SELECT jwt_guard.authenticate(:'tok_write') ->> 'sub' AS sub;
SELECT t.try($$UPDATE orders SET item = 'renamed' WHERE id = 1$$);
SELECT t.try($$UPDATE orders SET tenant_id = 'acme', item = 'x' WHERE id = 1$$);
SELECT t.try($$INSERT INTO notes VALUES (3, 'acme', 'mine')$$);
SELECT t.try($$INSERT INTO notes VALUES (4, 'acme', 'mine') RETURNING id$$);
SELECT t.try($$DELETE FROM notes WHERE id = 3$$);
COPY notes (id, tenant_id, body) FROM STDIN;
5	acme	copied
\.
COPY notes TO STDOUT;
SELECT t.try('TRUNCATE notes CASCADE');
SELECT t.try('TRUNCATE notes');
SELECT t.try('TRUNCATE orders');
-- Re-authenticating under enforcement works (the extension's own catalog reads are not checked).
SELECT jwt_guard.authenticate(:'tok_write') ->> 'sub' AS sub;
-- COPY is checked like SELECT and INSERT: secrets is not listed.
COPY secrets TO STDOUT;
ROLLBACK;
-- The whitelist only narrows: a token that lists truncate:notes is still refused by
-- PostgreSQL's own check when the GRANT is taken away.
\c - postgres
REVOKE TRUNCATE ON notes FROM app_user;
\c - authenticator
BEGIN;
SELECT jwt_guard.authenticate(:'tok_write') ->> 'sub' AS sub;
SELECT t.try('TRUNCATE notes');
ROLLBACK;
\c - postgres
GRANT TRUNCATE ON notes TO app_user;
\c - authenticator
-- An insert-only token cannot read back what RETURNING would show.
BEGIN;
SELECT jwt_guard.authenticate(:'tok_insert_only') ->> 'sub' AS sub;
SELECT t.try($$INSERT INTO notes VALUES (6, 'acme', 'blind')$$);
SELECT t.try($$INSERT INTO notes VALUES (7, 'acme', 'blind') RETURNING id$$);
SELECT t.try('SELECT count(*) FROM notes');
ROLLBACK;
-- No permissions claim: no table at all. Command names are case-sensitive.
BEGIN;
SELECT jwt_guard.authenticate(:'tok_none') ->> 'sub' AS sub;
SELECT t.try('SELECT count(*) FROM orders');
SELECT jwt_guard.can('anything');
ROLLBACK;
BEGIN;
SELECT jwt_guard.authenticate(:'tok_upper') ->> 'sub' AS sub;
SELECT t.try('SELECT count(*) FROM orders');
SELECT jwt_guard.can('SELECT:orders') AS listed_as_action;
ROLLBACK;
-- A security_invoker view needs its tables listed too.
BEGIN;
SELECT jwt_guard.authenticate(:'tok_invoker') ->> 'sub' AS sub;
SELECT t.try('SELECT count(*) FROM notes_invoker');
ROLLBACK;
BEGIN;
SELECT jwt_guard.authenticate(:'tok_invoker_full') ->> 'sub' AS sub;
SELECT count(*) FROM notes_invoker;
ROLLBACK;
-- Without a token the login role reads no table at all.
SELECT count(*) FROM notes;
-- protect_table: one call ties docs to jwt_guard.tenant(), compared as uuid.
\c - postgres
SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = 'docs'::regclass;
SELECT jwt_guard.protect_table('docs', 'tenant_id');
SELECT polname, polpermissive, pg_get_expr(polqual, polrelid) AS using_expr, pg_get_expr(polwithcheck, polrelid) AS check_expr
FROM pg_policy WHERE polrelid = 'docs'::regclass ORDER BY polname;
SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = 'docs'::regclass;
-- Idempotent: a second call leaves the same two policies.
SELECT jwt_guard.protect_table('docs', 'tenant_id');
SELECT count(*) AS policies FROM pg_policy WHERE polrelid = 'docs'::regclass;
SELECT t.try($$SELECT jwt_guard.protect_table('docs', 'no_such_column')$$);
\c - authenticator
BEGIN;
SELECT jwt_guard.authenticate(:'tok_doc_a') ->> 'tenant_id' AS tenant;
SELECT tenant_id, count(*) FROM docs GROUP BY tenant_id;
SELECT t.try($$INSERT INTO docs (tenant_id, body) VALUES ('22222222-2222-2222-2222-222222222222', 'smuggled')$$);
SELECT t.try($$UPDATE docs SET tenant_id = '22222222-2222-2222-2222-222222222222' WHERE id = 2$$);
SELECT t.try($$INSERT INTO docs (tenant_id, body) VALUES ('11111111-1111-1111-1111-111111111111', 'mine')$$);
-- The tenant is compared in the column's type, so the index on tenant_id serves the policy.
SET LOCAL enable_seqscan = off;
SELECT count(*) FILTER (WHERE l LIKE '%docs_tenant_idx%') > 0 AS uses_tenant_index
FROM t.explain('SELECT count(*) FROM docs') AS e(l);
ROLLBACK;
BEGIN;
SELECT jwt_guard.authenticate(:'tok_doc_b') ->> 'tenant_id' AS tenant;
SELECT tenant_id, count(*) FROM docs GROUP BY tenant_id;
ROLLBACK;
-- unprotect_table restores exactly the state before.
\c - postgres
SELECT jwt_guard.unprotect_table('docs');
SELECT count(*) AS policies FROM pg_policy WHERE polrelid = 'docs'::regclass;
SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = 'docs'::regclass;
SELECT jwt_guard.unprotect_table('docs');
-- notes had no policy, so it also gets the permissive one; orders keeps its own permissive
-- policy and gets only the restrictive one; unprotect restores each exactly.
SELECT jwt_guard.protect_table('notes', 'tenant_id');
SELECT polname, polpermissive FROM pg_policy WHERE polrelid = 'notes'::regclass ORDER BY polname;
SELECT jwt_guard.protect_table('orders', 'tenant_id');
SELECT polname, polpermissive FROM pg_policy WHERE polrelid = 'orders'::regclass ORDER BY polname;
SELECT jwt_guard.unprotect_table('orders');
SELECT polname FROM pg_policy WHERE polrelid = 'orders'::regclass ORDER BY polname;
SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = 'orders'::regclass;
SELECT jwt_guard.unprotect_table('notes');
SELECT count(p.oid) AS policies, bool_or(relrowsecurity) AS rls FROM pg_class c LEFT JOIN pg_policy p ON p.polrelid = c.oid
WHERE c.oid = 'notes'::regclass;
-- The login role cannot protect a table (before a token it reads no catalog either).
\c - authenticator
SELECT jwt_guard.protect_table('notes', 'tenant_id');
-- Large objects: refused under an enforced token unless it lists jwt_guard:large_objects;
-- never created under a token (they would outlive it).
\c - postgres
SELECT lo_from_bytea(4242, 'large object of acme') AS lo;
GRANT SELECT, UPDATE ON LARGE OBJECT 4242 TO app_user;
CREATE TABLE plain_notes (id int, secret text NOT NULL, body text CHECK (length(body) < 5));
GRANT SELECT, INSERT ON plain_notes TO app_user;
\c - authenticator
\getenv tok_lo TOK_PERM_LO
\getenv tok_plain TOK_PERM_PLAIN
BEGIN;
SELECT jwt_guard.authenticate(:'tok_read') ->> 'sub' AS sub;
SELECT t.try('SELECT lo_get(4242)');
SELECT t.try($$SELECT lo_put(4242, 0, 'x')$$);
SELECT t.try('SELECT lo_open(4242, 262144)');
SELECT t.try('SELECT lo_unlink(4242)');
ROLLBACK;
BEGIN;
SELECT jwt_guard.authenticate(:'tok_lo') ->> 'sub' AS sub;
SELECT convert_from(lo_get(4242), 'UTF8') AS granted_read;
SELECT t.try('SELECT lo_create(0)');
ROLLBACK;
-- Error details show row values: under a column whitelist they never reach the client.
BEGIN;
SELECT jwt_guard.authenticate(:'tok_plain') ->> 'sub' AS sub;
\set VERBOSITY default
INSERT INTO plain_notes VALUES (1, 'top-secret', 'too long');
\set VERBOSITY terse
ROLLBACK;
\c - postgres
ALTER ROLE authenticator RESET pg_jwt_guard.enforce_permissions;

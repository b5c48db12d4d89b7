-- Tenant isolation through an RLS policy on jwt_guard.tenant(), serial and parallel.
\set VERBOSITY terse
\c - tester
\getenv tok_acme TOK_TENANT_ACME
\getenv tok_globex TOK_TENANT_GLOBEX
\getenv tok_reader TOK_READER_ACME
BEGIN;
SELECT jwt_guard.authenticate(:'tok_acme') ->> 'tenant_id' AS tenant;
SELECT tenant_id, count(*) FROM orders GROUP BY tenant_id;
-- Inserting or moving a row into another tenant is refused by WITH CHECK.
SELECT t.try($$INSERT INTO orders VALUES (100001, 'globex', 'smuggled')$$);
SELECT t.try($$UPDATE orders SET tenant_id = 'globex' WHERE id = 1$$);
SELECT t.try($$INSERT INTO orders VALUES (100002, 'acme', 'mine')$$);
-- Rows of the other tenant cannot be touched.
WITH d AS (DELETE FROM orders WHERE id = 4 RETURNING 1) SELECT count(*) AS deleted FROM d;
WITH u AS (UPDATE orders SET item = 'hijacked' WHERE tenant_id = 'globex' RETURNING 1) SELECT count(*) AS updated FROM u;
ROLLBACK;
BEGIN;
SELECT jwt_guard.authenticate(:'tok_globex') ->> 'tenant_id' AS tenant;
SELECT tenant_id, count(*) FROM orders GROUP BY tenant_id;
ROLLBACK;
-- GRANTs still apply: app_reader may read but not write.
BEGIN;
SELECT jwt_guard.authenticate(:'tok_reader') ->> 'role' AS role;
SELECT count(*) FROM orders;
SELECT t.try($$INSERT INTO orders VALUES (100003, 'acme', 'x')$$);
ROLLBACK;
-- Parallel plans: workers see the same identity, so counts match the serial plan.
BEGIN;
SELECT jwt_guard.authenticate(:'tok_acme') ->> 'tenant_id' AS tenant;
SET LOCAL max_parallel_workers_per_gather = 0;
SELECT count(*) AS serial_count FROM orders;
SET LOCAL max_parallel_workers_per_gather = 2;
SET LOCAL parallel_setup_cost = 0;
SET LOCAL parallel_tuple_cost = 0;
SET LOCAL min_parallel_table_scan_size = 0;
-- Only workers scan, so a worker that saw no identity would make the count smaller.
SET LOCAL parallel_leader_participation = off;
SELECT count(*) FILTER (WHERE l LIKE '%Parallel Seq Scan%') > 0 AS parallel_plan
FROM (SELECT * FROM t.explain('SELECT count(*) FROM orders')) AS e(l);
SELECT count(*) AS parallel_count FROM orders;
-- The setting was renamed in PostgreSQL 16.
SELECT set_config(CASE WHEN current_setting('server_version_num')::int >= 160000
    THEN 'debug_parallel_query' ELSE 'force_parallel_mode' END, 'on', true) AS forced_parallel;
SELECT jwt_guard.tenant() AS tenant_in_worker, jwt_guard.sub() AS sub_in_worker, current_user AS user_in_worker;
SELECT count(*) AS forced_parallel_count FROM orders;
ROLLBACK;

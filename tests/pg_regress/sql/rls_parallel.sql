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
-- Accessors that read the claims in the worker itself: claim(), is_authenticated() and claims()
-- in a policy, evaluated by a Parallel Seq Scan. Only workers scan (no leader participation),
-- and the test checks that workers really ran, so a worker without the identity would count 0.
\c - postgres
CREATE TABLE claim_rows (id int PRIMARY KEY, tenant_id text NOT NULL, owner text NOT NULL);
ALTER TABLE claim_rows ENABLE ROW LEVEL SECURITY;
ALTER TABLE claim_rows FORCE ROW LEVEL SECURITY;
CREATE POLICY by_claims ON claim_rows
    USING (jwt_guard.is_authenticated() AND tenant_id = jwt_guard.claim('tenant_id')
           AND owner = jwt_guard.claims() ->> 'sub');
GRANT SELECT ON claim_rows TO app_user;
-- acme and alice: 10000 rows; globex and bob: 1666 rows.
INSERT INTO claim_rows
    SELECT g, CASE WHEN g % 4 = 0 THEN 'globex' ELSE 'acme' END,
              CASE WHEN g % 3 = 0 THEN 'bob' ELSE 'alice' END
    FROM generate_series(1, 20000) AS g;
ANALYZE claim_rows;
-- How many parallel workers a query really started (0 would mean the leader did all the work).
CREATE FUNCTION t.workers_launched(q text) RETURNS int LANGUAGE plpgsql AS $$
DECLARE l text; n int := 0;
BEGIN
    FOR l IN EXECUTE 'EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) ' || q LOOP
        n := n + coalesce((regexp_match(l, 'Workers Launched: (\d+)'))[1]::int, 0);
    END LOOP;
    RETURN n;
END $$;
\c - tester
BEGIN;
SELECT jwt_guard.authenticate(:'tok_acme') ->> 'tenant_id' AS tenant;
SET LOCAL max_parallel_workers_per_gather = 0;
SELECT count(*) AS serial_count FROM claim_rows;
SET LOCAL max_parallel_workers_per_gather = 2;
SET LOCAL parallel_setup_cost = 0;
SET LOCAL parallel_tuple_cost = 0;
SET LOCAL min_parallel_table_scan_size = 0;
SET LOCAL parallel_leader_participation = off;
EXPLAIN (COSTS OFF) SELECT count(*) FROM claim_rows;
SELECT t.workers_launched('SELECT count(*) FROM claim_rows') > 0 AS workers_ran;
SELECT count(*) AS parallel_count FROM claim_rows;
-- The same accessors in a WHERE clause. is_authenticated() reads no column, so the planner makes
-- it a one-time filter; that filter too runs below the Gather, in the workers.
EXPLAIN (COSTS OFF) SELECT count(*) FROM orders
WHERE jwt_guard.is_authenticated() AND item <> jwt_guard.claims() ->> 'sub'
  AND tenant_id = jwt_guard.claim('tenant_id');
SELECT count(*) AS parallel_where_count FROM orders
WHERE jwt_guard.is_authenticated() AND item <> jwt_guard.claims() ->> 'sub'
  AND tenant_id = jwt_guard.claim('tenant_id');
-- A single-copy plan: the worker computes the whole row.
SELECT set_config(CASE WHEN current_setting('server_version_num')::int >= 160000
    THEN 'debug_parallel_query' ELSE 'force_parallel_mode' END, 'on', true) AS forced_parallel;
EXPLAIN (COSTS OFF) SELECT jwt_guard.claim('tenant_id'), jwt_guard.is_authenticated(), jwt_guard.claims() ->> 'sub';
SELECT t.workers_launched($$SELECT jwt_guard.claim('tenant_id')$$) AS single_copy_workers;
SELECT jwt_guard.claim('tenant_id') AS claim_in_worker, jwt_guard.is_authenticated() AS authenticated_in_worker,
       jwt_guard.claims() ->> 'sub' AS claims_sub_in_worker;
ROLLBACK;
-- The next transaction's workers see the next identity: globex and bob.
BEGIN;
SELECT jwt_guard.authenticate(:'tok_globex') ->> 'tenant_id' AS tenant;
SET LOCAL max_parallel_workers_per_gather = 2;
SET LOCAL parallel_setup_cost = 0;
SET LOCAL parallel_tuple_cost = 0;
SET LOCAL min_parallel_table_scan_size = 0;
SET LOCAL parallel_leader_participation = off;
SELECT t.workers_launched('SELECT count(*) FROM claim_rows') > 0 AS workers_ran;
SELECT count(*) AS parallel_count FROM claim_rows;
ROLLBACK;

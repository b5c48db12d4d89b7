-- Every function of the extension has the volatility, parallel label and strictness that the
-- function table of docs/sql-reference.md states (handed in by the test runner, one
-- "name|volatility|parallel|strict" line per function), and the table lists every function.
\getenv reference SQL_REFERENCE_FUNCTIONS
WITH documented AS (
    SELECT split_part(l, '|', 1) AS name, split_part(l, '|', 2) AS volatility,
           split_part(l, '|', 3) AS parallel, split_part(l, '|', 4) AS strict
    FROM regexp_split_to_table(:'reference', E'\n') AS l WHERE l <> ''
), actual AS (
    SELECT p.proname::text AS name,
           CASE p.provolatile WHEN 'v' THEN 'VOLATILE' WHEN 's' THEN 'STABLE' ELSE 'IMMUTABLE' END AS volatility,
           CASE p.proparallel WHEN 's' THEN 'PARALLEL SAFE' WHEN 'r' THEN 'PARALLEL RESTRICTED' ELSE 'PARALLEL UNSAFE' END AS parallel,
           CASE WHEN p.pronargs = 0 THEN '-' WHEN p.proisstrict THEN 'yes' ELSE 'no' END AS strict
    FROM pg_proc p JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid
        AND d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
    JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'pg_jwt_guard'
)
SELECT coalesce(a.name, r.name) AS function,
       r.volatility || ', ' || r.parallel || ', strict ' || r.strict AS documented,
       a.volatility || ', ' || a.parallel || ', strict ' || a.strict AS actual
FROM actual a FULL JOIN documented r ON r.name = a.name
WHERE (r.volatility, r.parallel, r.strict) IS DISTINCT FROM (a.volatility, a.parallel, a.strict)
ORDER BY 1;
SELECT count(*) AS functions_checked FROM regexp_split_to_table(:'reference', E'\n') AS l WHERE l <> '';

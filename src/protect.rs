//! `protect_table` and `unprotect_table`: one call to tie a table's rows to `jwt_guard.tenant()`.
//!
//! They are plain DDL, so they are written in PL/pgSQL and run with the caller's rights (only
//! the table owner can change its row level security). The table's previous row-security state
//! and the tenant column are kept in the comment of the policy, so `unprotect_table` restores
//! exactly what was there.
//!
//! Rows are reachable through every partition and inheritance child by name, so protection
//! covers the whole tree below the table: the children present now, and (through an event
//! trigger) every child created or attached later.
//!
//! The policy reads `(SELECT jwt_guard.tenant())`: an init plan, evaluated once per statement,
//! that an index scan or run-time partition pruning uses like a constant, while the cached plan
//! stays valid for every identity. It compares the column with the tenant exactly: the column's type without its
//! modifier (`varchar(9)` would truncate, `numeric(6,0)` would round), and, unless the type is
//! text or varchar under a deterministic collation, the column's text form as well (numeric
//! `42.0`, a `char(n)` padded value or a case-insensitive collation would otherwise let one
//! tenant string match another tenant's rows).

pgrx::extension_sql!(
    r#"
CREATE FUNCTION jwt_guard.protect_one(tbl regclass, tenant_column name) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    col_type text;
    exact boolean;
    tenant_expr text;
    state text;
    had_rls boolean;
    had_force boolean;
    add_permissive boolean;
BEGIN
    -- The type by its own name, schema-qualified: SQL spellings such as "character" mean
    -- char(1), and a modifier would truncate or round the tenant.
    SELECT format('%I.%I', tn.nspname, ty.typname),
           a.atttypid IN ('text'::regtype, 'varchar'::regtype)
             AND coalesce((SELECT co.collisdeterministic FROM pg_collation co WHERE co.oid = a.attcollation), true)
      INTO col_type, exact
    FROM pg_attribute a
    JOIN pg_type ty ON ty.oid = a.atttypid
    JOIN pg_namespace tn ON tn.oid = ty.typnamespace
    WHERE a.attrelid = tbl AND a.attname = tenant_column AND a.attnum > 0 AND NOT a.attisdropped;
    IF col_type IS NULL THEN
        RAISE EXCEPTION 'pg_jwt_guard: column "%" does not exist in %', tenant_column, tbl USING ERRCODE = '42703';
    END IF;
    -- The cast to the column's type lets an index serve the policy; the text comparison makes
    -- the match exact where the type's own equality is looser than the tenant string.
    -- Each tenant() call is a sub-select, evaluated once per statement rather than per row.
    tenant_expr := format('%I = (SELECT (jwt_guard.tenant())::%s)', tenant_column, col_type);
    IF NOT exact THEN
        tenant_expr := tenant_expr || format(' AND (%I)::text COLLATE "C" = (SELECT jwt_guard.tenant()) COLLATE "C"', tenant_column);
    END IF;
    -- Protecting again keeps the state recorded the first time.
    SELECT obj_description(p.oid, 'pg_policy') INTO state
    FROM pg_policy p WHERE p.polrelid = tbl AND p.polname = 'jwt_guard_tenant';
    IF state LIKE 'pg_jwt_guard: %' THEN
        had_rls := substring(state FROM 'rls=(\w+)')::boolean;
        had_force := substring(state FROM 'force=(\w+)')::boolean;
        add_permissive := substring(state FROM 'permissive=(\w+)')::boolean;
    ELSE
        SELECT c.relrowsecurity, c.relforcerowsecurity INTO had_rls, had_force FROM pg_class c WHERE c.oid = tbl;
        -- Restrictive policies only narrow: without any permissive policy no row is visible.
        add_permissive := NOT EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = tbl AND p.polpermissive);
    END IF;
    -- Policies and their comment before ALTER TABLE: the ALTER fires the event trigger below,
    -- which must already see this table as protected.
    IF state IS NOT NULL THEN
        EXECUTE format('DROP POLICY jwt_guard_tenant ON %s', tbl);
    END IF;
    EXECUTE format('CREATE POLICY jwt_guard_tenant ON %s AS RESTRICTIVE FOR ALL USING (%s) WITH CHECK (%s)',
        tbl, tenant_expr, tenant_expr);
    EXECUTE format('COMMENT ON POLICY jwt_guard_tenant ON %s IS %L', tbl,
        format('pg_jwt_guard: rls=%s force=%s permissive=%s column=%s', had_rls, had_force, add_permissive, tenant_column));
    IF add_permissive AND NOT EXISTS (
        SELECT 1 FROM pg_policy p WHERE p.polrelid = tbl AND p.polname = 'jwt_guard_tenant_allow'
    ) THEN
        EXECUTE format('CREATE POLICY jwt_guard_tenant_allow ON %s AS PERMISSIVE FOR ALL USING (true) WITH CHECK (true)', tbl);
    END IF;
    EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', tbl);
    EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', tbl);
END
$fn$;

CREATE FUNCTION jwt_guard.protect_table(tbl regclass, tenant_column name) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    part regclass;
BEGIN
    IF tbl IS NULL OR tenant_column IS NULL THEN
        RAISE EXCEPTION 'pg_jwt_guard: table and tenant column must not be NULL' USING ERRCODE = '22023';
    END IF;
    -- The table itself first (it reports a missing column), then every partition and child.
    PERFORM jwt_guard.protect_one(tbl, tenant_column);
    FOR part IN
        WITH RECURSIVE tree(relid) AS (
            SELECT i.inhrelid FROM pg_inherits i WHERE i.inhparent = tbl
            UNION
            SELECT i.inhrelid FROM pg_inherits i JOIN tree t ON i.inhparent = t.relid)
        SELECT relid::regclass FROM tree
    LOOP
        PERFORM jwt_guard.protect_one(part, tenant_column);
    END LOOP;
END
$fn$;

CREATE FUNCTION jwt_guard.unprotect_table(tbl regclass) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    part regclass;
    state text;
    found_any boolean := false;
BEGIN
    FOR part, state IN
        WITH RECURSIVE tree(relid) AS (
            SELECT tbl::oid
            UNION
            SELECT i.inhrelid FROM pg_inherits i JOIN tree t ON i.inhparent = t.relid)
        SELECT t.relid::regclass, obj_description(p.oid, 'pg_policy')
        FROM tree t JOIN pg_policy p ON p.polrelid = t.relid AND p.polname = 'jwt_guard_tenant'
    LOOP
        CONTINUE WHEN state IS NULL OR state NOT LIKE 'pg_jwt_guard: %';
        found_any := true;
        EXECUTE format('DROP POLICY jwt_guard_tenant ON %s', part);
        IF substring(state FROM 'permissive=(\w+)')::boolean THEN
            EXECUTE format('DROP POLICY IF EXISTS jwt_guard_tenant_allow ON %s', part);
        END IF;
        IF NOT substring(state FROM 'force=(\w+)')::boolean THEN
            EXECUTE format('ALTER TABLE %s NO FORCE ROW LEVEL SECURITY', part);
        END IF;
        IF NOT substring(state FROM 'rls=(\w+)')::boolean THEN
            EXECUTE format('ALTER TABLE %s DISABLE ROW LEVEL SECURITY', part);
        END IF;
    END LOOP;
    IF NOT found_any THEN
        RAISE NOTICE 'pg_jwt_guard: % is not protected', tbl;
    END IF;
END
$fn$;

-- Children created or attached after protect_table(): after every CREATE TABLE or ALTER TABLE,
-- each unprotected descendant of a protected table is protected with its ancestor's column.
-- It runs with the rights of whoever ran the DDL, who owns the new child.
CREATE FUNCTION jwt_guard.protect_new_children() RETURNS event_trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    child regclass;
    col name;
BEGIN
    FOR child, col IN
        WITH RECURSIVE tree(relid, col) AS (
            SELECT p.polrelid, substring(obj_description(p.oid, 'pg_policy') FROM 'column=(.*)$')::name
            FROM pg_policy p
            WHERE p.polname = 'jwt_guard_tenant' AND obj_description(p.oid, 'pg_policy') LIKE 'pg_jwt_guard: %column=%'
            UNION
            SELECT i.inhrelid, t.col FROM pg_inherits i JOIN tree t ON i.inhparent = t.relid)
        SELECT DISTINCT ON (t.relid) t.relid::regclass, t.col
        FROM tree t
        WHERE NOT EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = t.relid AND p.polname = 'jwt_guard_tenant')
    LOOP
        PERFORM jwt_guard.protect_one(child, col);
    END LOOP;
END
$fn$;

CREATE EVENT TRIGGER jwt_guard_protect_new_children ON ddl_command_end
    WHEN TAG IN ('CREATE TABLE', 'ALTER TABLE')
    EXECUTE FUNCTION jwt_guard.protect_new_children();
"#,
    name = "protect_table"
);

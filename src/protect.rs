//! `protect_table` and `unprotect_table`: one call to tie a table's rows to `jwt_guard.tenant()`.
//!
//! They are plain DDL, so they are written in PL/pgSQL and run with the caller's rights (only
//! the table owner can change its row level security). The table's previous row-security state
//! is kept in the comment of the policy, so `unprotect_table` restores exactly what was there.

pgrx::extension_sql!(
    r#"
CREATE FUNCTION jwt_guard.protect_table(tbl regclass, tenant_column name) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    col_type text;
    state text;
    had_rls boolean;
    had_force boolean;
    add_permissive boolean;
BEGIN
    IF tbl IS NULL OR tenant_column IS NULL THEN
        RAISE EXCEPTION 'pg_jwt_guard: table and tenant column must not be NULL' USING ERRCODE = '22023';
    END IF;
    SELECT format_type(a.atttypid, a.atttypmod) INTO col_type
    FROM pg_attribute a
    WHERE a.attrelid = tbl AND a.attname = tenant_column AND a.attnum > 0 AND NOT a.attisdropped;
    IF col_type IS NULL THEN
        RAISE EXCEPTION 'pg_jwt_guard: column "%" does not exist in %', tenant_column, tbl USING ERRCODE = '42703';
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
    EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', tbl);
    EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', tbl);
    IF state IS NOT NULL THEN
        EXECUTE format('DROP POLICY jwt_guard_tenant ON %s', tbl);
    END IF;
    -- The tenant is cast to the column's own type so that an index on the column is usable.
    EXECUTE format(
        'CREATE POLICY jwt_guard_tenant ON %s AS RESTRICTIVE FOR ALL '
        'USING (%I = (jwt_guard.tenant())::%s) WITH CHECK (%I = (jwt_guard.tenant())::%s)',
        tbl, tenant_column, col_type, tenant_column, col_type);
    EXECUTE format('COMMENT ON POLICY jwt_guard_tenant ON %s IS %L', tbl,
        format('pg_jwt_guard: rls=%s force=%s permissive=%s', had_rls, had_force, add_permissive));
    IF add_permissive AND NOT EXISTS (
        SELECT 1 FROM pg_policy p WHERE p.polrelid = tbl AND p.polname = 'jwt_guard_tenant_allow'
    ) THEN
        EXECUTE format('CREATE POLICY jwt_guard_tenant_allow ON %s AS PERMISSIVE FOR ALL USING (true) WITH CHECK (true)', tbl);
    END IF;
END
$fn$;

CREATE FUNCTION jwt_guard.unprotect_table(tbl regclass) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    state text;
BEGIN
    SELECT obj_description(p.oid, 'pg_policy') INTO state
    FROM pg_policy p WHERE p.polrelid = tbl AND p.polname = 'jwt_guard_tenant';
    IF state IS NULL OR state NOT LIKE 'pg_jwt_guard: %' THEN
        RAISE NOTICE 'pg_jwt_guard: % is not protected', tbl;
        RETURN;
    END IF;
    EXECUTE format('DROP POLICY jwt_guard_tenant ON %s', tbl);
    IF substring(state FROM 'permissive=(\w+)')::boolean THEN
        EXECUTE format('DROP POLICY IF EXISTS jwt_guard_tenant_allow ON %s', tbl);
    END IF;
    IF NOT substring(state FROM 'force=(\w+)')::boolean THEN
        EXECUTE format('ALTER TABLE %s NO FORCE ROW LEVEL SECURITY', tbl);
    END IF;
    IF NOT substring(state FROM 'rls=(\w+)')::boolean THEN
        EXECUTE format('ALTER TABLE %s DISABLE ROW LEVEL SECURITY', tbl);
    END IF;
END
$fn$;
"#,
    name = "protect_table"
);

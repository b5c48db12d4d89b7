//! `jwt_guard.install_compat()`: lets policies written for Supabase or PostgREST run on the
//! verified identity (docs/migrating.md).
//!
//! - `supabase`: `auth.uid()`, `auth.role()`, `auth.email()` and `auth.jwt()` as SQL functions
//!   over the accessors. They are inlined into the queries that call them, so they cost what
//!   the accessor costs; they are owned by the superuser who installs them, in a schema where
//!   PUBLIC may not create anything, and depend on the extension (dropping it needs CASCADE).
//! - `postgrest`: `request.jwt.claims` can only be made safe at server start
//!   (`pg_jwt_guard.request_claims`, see `request_claims`); this checks that it is.

pgrx::extension_sql!(
    r#"
CREATE FUNCTION jwt_guard.install_compat(kind text)
RETURNS text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $compat$
BEGIN
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        RAISE EXCEPTION USING ERRCODE = '42501',
            MESSAGE = 'pg_jwt_guard: install_compat() must be run by a superuser';
    END IF;
    CASE kind
    WHEN 'supabase' THEN
        CREATE SCHEMA IF NOT EXISTS auth;
        REVOKE CREATE ON SCHEMA auth FROM PUBLIC;
        GRANT USAGE ON SCHEMA auth TO PUBLIC;
        CREATE OR REPLACE FUNCTION auth.uid() RETURNS uuid
            LANGUAGE sql STABLE PARALLEL SAFE RETURN jwt_guard.claim_uuid('sub');
        CREATE OR REPLACE FUNCTION auth.role() RETURNS text
            LANGUAGE sql STABLE PARALLEL SAFE RETURN jwt_guard.claim('role');
        CREATE OR REPLACE FUNCTION auth.email() RETURNS text
            LANGUAGE sql STABLE PARALLEL SAFE RETURN jwt_guard.claim('email');
        CREATE OR REPLACE FUNCTION auth.jwt() RETURNS jsonb
            LANGUAGE sql STABLE PARALLEL SAFE RETURN jwt_guard.claims();
        -- Replaced functions keep their owner: make sure no other role can change them.
        ALTER FUNCTION auth.uid() OWNER TO CURRENT_USER;
        ALTER FUNCTION auth.role() OWNER TO CURRENT_USER;
        ALTER FUNCTION auth.email() OWNER TO CURRENT_USER;
        ALTER FUNCTION auth.jwt() OWNER TO CURRENT_USER;
        GRANT EXECUTE ON FUNCTION auth.uid(), auth.role(), auth.email(), auth.jwt() TO PUBLIC;
        RETURN 'auth.uid(), auth.role(), auth.email() and auth.jwt() read the verified identity';
    WHEN 'postgrest' THEN
        IF coalesce(current_setting('pg_jwt_guard.request_claims', true), 'off') <> 'on' THEN
            RAISE EXCEPTION USING ERRCODE = '55000',
                MESSAGE = 'pg_jwt_guard: request.jwt.claims is not owned by pg_jwt_guard: any client can set it',
                HINT = 'Set pg_jwt_guard.request_claims = on in postgresql.conf and restart the server, or rewrite the policies with jwt_guard.claims() (docs/migrating.md).';
        END IF;
        RETURN 'request.jwt.claims carries the verified claims; clients cannot set it';
    ELSE
        RAISE EXCEPTION USING ERRCODE = '22023',
            MESSAGE = format('pg_jwt_guard: unknown compatibility "%s": use supabase or postgrest', kind);
    END CASE;
END
$compat$;
REVOKE EXECUTE ON FUNCTION jwt_guard.install_compat(text) FROM PUBLIC;
"#,
    name = "install_compat"
);

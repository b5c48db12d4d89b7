-- pg_jwt_guard 0.1.0 -> 0.2.0. Run by ALTER EXTENSION pg_jwt_guard UPDATE.
\echo Use "ALTER EXTENSION pg_jwt_guard UPDATE" to load this file. \quit

-- Key store: a kid is unique per issuer (one IdP's kid may equal another's); a key that its
-- issuer's jwks_uri stopped publishing carries the time it was first missed.
ALTER TABLE jwt_guard.key_store DROP CONSTRAINT key_store_pkey;
ALTER TABLE jwt_guard.key_store ALTER COLUMN kid SET NOT NULL;
ALTER TABLE jwt_guard.key_store ADD COLUMN unpublished_since timestamptz;
CREATE UNIQUE INDEX key_store_issuer_kid ON jwt_guard.key_store ((coalesce(issuer, '')), kid);
CREATE OR REPLACE VIEW jwt_guard.keys AS
    SELECT kid, alg, issuer, status, fingerprint, created, retired, unpublished_since
    FROM jwt_guard.key_store;

CREATE TABLE jwt_guard.issuer_profiles (
    iss               text PRIMARY KEY CHECK (length(iss) BETWEEN 1 AND 1024),
    audience          text[],
    max_lifetime      interval,
    max_token_bytes   integer CHECK (max_token_bytes BETWEEN 256 AND 1048576),
    role_claim        text CHECK (role_claim <> ''),
    tenant_claim      text CHECK (tenant_claim <> ''),
    default_role      text,
    permissions_claim text CHECK (permissions_claim <> ''),
    jwks_uri          text CHECK (jwks_uri LIKE 'https://%'),
    role_map          jsonb CHECK (jsonb_typeof(role_map) = 'object'),
    replay_protection boolean NOT NULL DEFAULT false,
    updated           timestamptz NOT NULL DEFAULT now()
);
REVOKE ALL ON jwt_guard.issuer_profiles FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('jwt_guard.issuer_profiles', '');
-- What the jwks worker last did for each issuer with a jwks_uri (runtime state, not dumped).
CREATE TABLE jwt_guard.jwks_status (
    iss            text PRIMARY KEY,
    attempted      timestamptz NOT NULL,
    succeeded      timestamptz,
    error          text,
    published_keys integer
);
REVOKE ALL ON jwt_guard.jwks_status FROM PUBLIC;
CREATE VIEW jwt_guard.issuers AS
    SELECT p.iss, p.audience, p.max_lifetime, p.max_token_bytes, p.role_claim, p.tenant_claim,
           p.default_role, p.permissions_claim, p.jwks_uri, p.role_map, p.replay_protection, p.updated,
           s.attempted AS jwks_attempted, s.succeeded AS jwks_fetched, s.error AS jwks_error,
           s.published_keys AS jwks_keys
    FROM jwt_guard.issuer_profiles p
    LEFT JOIN jwt_guard.jwks_status s ON s.iss = p.iss AND p.jwks_uri IS NOT NULL;
REVOKE ALL ON jwt_guard.issuers FROM PUBLIC;

-- requires:
--   issuer_profiles


CREATE TABLE jwt_guard.seen_jtis (
    digest     bytea PRIMARY KEY,
    expires_at timestamptz NOT NULL
);
CREATE INDEX seen_jtis_expires_at ON jwt_guard.seen_jtis (expires_at);
REVOKE ALL ON jwt_guard.seen_jtis FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('jwt_guard.seen_jtis', '');

-- tenant() and sub() are no longer folded into plans: CREATE OR REPLACE drops their planner
-- support function (and its dependency) without touching the policies that call them.
CREATE OR REPLACE FUNCTION "tenant"() RETURNS TEXT /* Option < String > */
STRICT STABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'tenant_wrapper';

CREATE OR REPLACE FUNCTION "sub"() RETURNS TEXT /* Option < String > */
STRICT STABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'sub_wrapper';

DROP FUNCTION jwt_guard.accessor_support(internal);

-- authenticate, verify and retire_key take an optional second argument.
DROP FUNCTION jwt_guard.authenticate(text);
DROP FUNCTION jwt_guard.verify(text);
DROP FUNCTION jwt_guard.retire_key(text);
CREATE OR REPLACE FUNCTION "authenticate"(
	"token" TEXT, /* Option < & str > */
	"role" TEXT DEFAULT NULL /* Option < & str > */
) RETURNS jsonb /* PreparedJsonb */
VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'authenticate_wrapper';

CREATE OR REPLACE FUNCTION "verify"(
	"token" TEXT, /* Option < & str > */
	"role" TEXT DEFAULT NULL /* Option < & str > */
) RETURNS jsonb /* PreparedJsonb */
VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'verify_wrapper';

CREATE OR REPLACE FUNCTION "retire_key"(
	"kid" TEXT, /* & str */
	"issuer" TEXT DEFAULT NULL /* Option < & str > */
) RETURNS void
VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'retire_key_wrapper';


-- Unchanged signatures, restated so that every attribute matches a fresh install.
CREATE OR REPLACE FUNCTION "add_key"(
	"kid" TEXT, /* Option < & str > */
	"alg" TEXT, /* Option < & str > */
	"key" TEXT, /* Option < & str > */
	"issuer" TEXT DEFAULT NULL /* Option < & str > */
) RETURNS void
VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'add_key_wrapper';

CREATE OR REPLACE FUNCTION "can"(
	"action" TEXT /* Option < & str > */
) RETURNS bool /* bool */
STABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'can_wrapper';

CREATE OR REPLACE FUNCTION "claim"(
	"name" TEXT /* & str */
) RETURNS TEXT /* Option < String > */
STRICT STABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'claim_wrapper';

CREATE OR REPLACE FUNCTION "claim_bigint"(
	"name" TEXT /* & str */
) RETURNS bigint /* Option < i64 > */
STRICT STABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'claim_bigint_wrapper';

CREATE OR REPLACE FUNCTION "claim_uuid"(
	"name" TEXT /* & str */
) RETURNS uuid /* Option < Uuid > */
STRICT STABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'claim_uuid_wrapper';

CREATE OR REPLACE FUNCTION "claims"() RETURNS jsonb /* Option < JsonB > */
STRICT STABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'claims_wrapper';

CREATE OR REPLACE FUNCTION "has_scope"(
	"scope" TEXT /* & str */
) RETURNS bool /* Option < bool > */
STRICT STABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'has_scope_wrapper';

CREATE OR REPLACE FUNCTION "import_jwks"(
	"jwks" jsonb, /* Option < JsonB > */
	"issuer" TEXT DEFAULT NULL /* Option < & str > */
) RETURNS INT /* i32 */
VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'import_jwks_wrapper';

CREATE OR REPLACE FUNCTION "is_authenticated"() RETURNS bool /* bool */
STRICT STABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'is_authenticated_wrapper';

CREATE OR REPLACE FUNCTION "require"(
	"action" TEXT /* Option < & str > */
) RETURNS void
STABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'require_wrapper';

CREATE OR REPLACE FUNCTION "reset"() RETURNS void
STRICT VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'reset_wrapper';


-- New functions.
CREATE OR REPLACE FUNCTION "drop_issuer"(
	"iss" TEXT /* & str */
) RETURNS bool /* bool */
STRICT VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'drop_issuer_wrapper';

CREATE OR REPLACE FUNCTION "refresh_jwks"() RETURNS bool /* bool */
STRICT VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'refresh_jwks_wrapper';

CREATE OR REPLACE FUNCTION "revoke_subject"(
	"sub" TEXT, /* Option < & str > */
	"issued_before" timestamp with time zone DEFAULT now(), /* Option < pgrx :: datum :: TimestampWithTimeZone > */
	"iss" TEXT DEFAULT NULL /* Option < & str > */
) RETURNS void
VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'revoke_subject_wrapper';

CREATE OR REPLACE FUNCTION "revoke_token"(
	"jti" TEXT, /* Option < & str > */
	"expires_at" timestamp with time zone DEFAULT NULL /* Option < pgrx :: datum :: TimestampWithTimeZone > */
) RETURNS void
VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'revoke_token_wrapper';

CREATE OR REPLACE FUNCTION "set_issuer"(
	"iss" TEXT, /* Option < & str > */
	"audience" TEXT[] DEFAULT NULL, /* :: std :: option :: Option < Vec < Option < String > > > */
	"max_lifetime" interval DEFAULT NULL, /* Option < Interval > */
	"max_token_bytes" INT DEFAULT NULL, /* Option < i32 > */
	"role_claim" TEXT DEFAULT NULL, /* Option < & str > */
	"tenant_claim" TEXT DEFAULT NULL, /* Option < & str > */
	"default_role" TEXT DEFAULT NULL, /* Option < & str > */
	"permissions_claim" TEXT DEFAULT NULL, /* Option < & str > */
	"jwks_uri" TEXT DEFAULT NULL, /* Option < & str > */
	"role_map" jsonb DEFAULT NULL, /* Option < JsonB > */
	"replay_protection" bool DEFAULT NULL /* Option < bool > */
) RETURNS void
VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'set_issuer_wrapper';

CREATE OR REPLACE FUNCTION "sync_jwks"(
	"issuer" TEXT, /* Option < & str > */
	"jwks" jsonb, /* Option < JsonB > */
	"retire_missing" bool DEFAULT false, /* bool */
	"default_alg" TEXT DEFAULT NULL /* Option < & str > */
) RETURNS TABLE (
	"kid" TEXT,  /* Option < String > */
	"action" TEXT,  /* String */
	"reason" TEXT  /* Option < String > */
)
VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'sync_jwks_wrapper';

CREATE OR REPLACE FUNCTION "unrevoke_subject"(
	"sub" TEXT, /* & str */
	"iss" TEXT DEFAULT NULL /* Option < & str > */
) RETURNS bool /* bool */
VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'unrevoke_subject_wrapper';

CREATE OR REPLACE FUNCTION "unrevoke_token"(
	"jti" TEXT /* & str */
) RETURNS bool /* bool */
STRICT VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'unrevoke_token_wrapper';

REVOKE EXECUTE ON FUNCTION jwt_guard.refresh_jwks() FROM PUBLIC;
CREATE TRIGGER issuer_profiles_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON jwt_guard.issuer_profiles
    FOR EACH STATEMENT EXECUTE FUNCTION jwt_guard.key_store_changed();
REVOKE EXECUTE ON FUNCTION jwt_guard.set_issuer(text, text[], interval, integer, text, text, text, text, text, jsonb, boolean) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION jwt_guard.drop_issuer(text) FROM PUBLIC;

-- Revocation.
CREATE SEQUENCE jwt_guard.revoked_tokens_seq;
CREATE TABLE jwt_guard.revoked_tokens (
    -- Backends read new entries by seq (a re-revocation takes a new one); an unrevoke moves
    -- the epoch, and they read all again.
    seq        bigint NOT NULL DEFAULT nextval('jwt_guard.revoked_tokens_seq') UNIQUE,
    jti        text PRIMARY KEY CHECK (length(jti) BETWEEN 1 AND 1024),
    -- What backends load: the first 16 bytes of SHA-256 over the jti's UTF-8 bytes.
    digest     bytea NOT NULL,
    expires_at timestamptz,
    revoked_at timestamptz NOT NULL DEFAULT now(),
    revoked_by name NOT NULL DEFAULT session_user
);
CREATE FUNCTION jwt_guard.revoked_token_digest() RETURNS trigger LANGUAGE plpgsql
    SET search_path = pg_catalog AS $$
BEGIN
    NEW.digest := substring(sha256(convert_to(NEW.jti, 'UTF8')) FROM 1 FOR 16);
    RETURN NEW;
END $$;
REVOKE EXECUTE ON FUNCTION jwt_guard.revoked_token_digest() FROM PUBLIC;
CREATE TRIGGER revoked_tokens_digest BEFORE INSERT OR UPDATE OF jti ON jwt_guard.revoked_tokens
    FOR EACH ROW EXECUTE FUNCTION jwt_guard.revoked_token_digest();
CREATE TABLE jwt_guard.revoked_subjects (
    sub           text NOT NULL CHECK (length(sub) BETWEEN 1 AND 1024),
    iss           text,
    issued_before timestamptz NOT NULL CHECK (issued_before <> '-infinity'),
    revoked_at    timestamptz NOT NULL DEFAULT now(),
    revoked_by    name NOT NULL DEFAULT session_user
);
CREATE TABLE jwt_guard.revocation_epoch (
    epoch  bigint NOT NULL,
    purged timestamptz NOT NULL
);
INSERT INTO jwt_guard.revocation_epoch VALUES (1, '-infinity');
REVOKE ALL ON jwt_guard.revocation_epoch FROM PUBLIC;
CREATE UNIQUE INDEX revoked_subjects_sub_iss ON jwt_guard.revoked_subjects (sub, (coalesce(iss, '')));
REVOKE ALL ON jwt_guard.revoked_tokens, jwt_guard.revoked_subjects FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('jwt_guard.revoked_tokens', '');
SELECT pg_catalog.pg_extension_config_dump('jwt_guard.revoked_tokens_seq', '');
REVOKE ALL ON SEQUENCE jwt_guard.revoked_tokens_seq FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('jwt_guard.revoked_subjects', '');
-- Inserts take the epoch row's lock before any row gets its seq, so seqs become visible in
-- order and a backend that has read up to seq n never misses a smaller one committed later.
CREATE FUNCTION jwt_guard.revocations_in_order() RETURNS trigger LANGUAGE plpgsql
    SET search_path = pg_catalog AS $$
BEGIN
    PERFORM 1 FROM jwt_guard.revocation_epoch FOR UPDATE;
    RETURN NULL;
END $$;
REVOKE EXECUTE ON FUNCTION jwt_guard.revocations_in_order() FROM PUBLIC;
CREATE TRIGGER revoked_tokens_in_order BEFORE INSERT ON jwt_guard.revoked_tokens
    FOR EACH STATEMENT EXECUTE FUNCTION jwt_guard.revocations_in_order();
CREATE TRIGGER revoked_tokens_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON jwt_guard.revoked_tokens
    FOR EACH STATEMENT EXECUTE FUNCTION jwt_guard.key_store_changed();
CREATE TRIGGER revoked_subjects_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON jwt_guard.revoked_subjects
    FOR EACH STATEMENT EXECUTE FUNCTION jwt_guard.key_store_changed();
CREATE VIEW jwt_guard.revocations AS
    SELECT 'token'::text AS kind, jti AS value, NULL::text AS iss, expires_at,
           NULL::timestamptz AS issued_before, revoked_at, revoked_by
    FROM jwt_guard.revoked_tokens
    UNION ALL
    SELECT 'subject', sub, iss, NULL, issued_before, revoked_at, revoked_by
    FROM jwt_guard.revoked_subjects;
REVOKE ALL ON jwt_guard.revocations FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION jwt_guard.revoke_token(text, timestamptz) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION jwt_guard.revoke_subject(text, timestamptz, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION jwt_guard.unrevoke_token(text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION jwt_guard.unrevoke_subject(text, text) FROM PUBLIC;

-- Table protection: partitions and children, an init-plan tenant, exact comparison.
CREATE OR REPLACE FUNCTION jwt_guard.protect_one(tbl regclass, tenant_column name) RETURNS void
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

CREATE OR REPLACE FUNCTION jwt_guard.protect_table(tbl regclass, tenant_column name) RETURNS void
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

CREATE OR REPLACE FUNCTION jwt_guard.unprotect_table(tbl regclass) RETURNS void
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

CREATE OR REPLACE FUNCTION jwt_guard.protect_new_children() RETURNS event_trigger
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

-- Tables protected under 0.1.0 get the 0.2.0 policy: the tenant read once per statement, and
-- the column recorded for partitions created later. The policy's column is the one it depends on.
DO $$
DECLARE
    tbl regclass;
    col name;
BEGIN
    FOR tbl, col IN
        SELECT p.polrelid::regclass, a.attname
        FROM pg_catalog.pg_policy p
        JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_policy'::regclass AND d.objid = p.oid
             AND d.refclassid = 'pg_catalog.pg_class'::regclass AND d.refobjid = p.polrelid AND d.refobjsubid > 0
        JOIN pg_catalog.pg_attribute a ON a.attrelid = p.polrelid AND a.attnum = d.refobjsubid
        WHERE p.polname = 'jwt_guard_tenant'
          AND pg_catalog.obj_description(p.oid, 'pg_policy') LIKE 'pg_jwt_guard: %'
          AND pg_catalog.obj_description(p.oid, 'pg_policy') NOT LIKE '%column=%'
    LOOP
        PERFORM jwt_guard.protect_one(tbl, col);
    END LOOP;
END
$$;

-- Delegated administration.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'jwt_guard_admin') THEN
        CREATE ROLE jwt_guard_admin NOLOGIN;
    END IF;
END
$$;
REVOKE EXECUTE ON FUNCTION jwt_guard.add_key(text, text, text, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION jwt_guard.import_jwks(jsonb, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION jwt_guard.retire_key(text, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION jwt_guard.sync_jwks(text, jsonb, boolean, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    jwt_guard.add_key(text, text, text, text),
    jwt_guard.import_jwks(jsonb, text),
    jwt_guard.retire_key(text, text),
    jwt_guard.sync_jwks(text, jsonb, boolean, text),
    jwt_guard.set_issuer(text, text[], interval, integer, text, text, text, text, text, jsonb, boolean),
    jwt_guard.drop_issuer(text),
    jwt_guard.refresh_jwks(),
    jwt_guard.revoke_token(text, timestamptz),
    jwt_guard.revoke_subject(text, timestamptz, text),
    jwt_guard.unrevoke_token(text),
    jwt_guard.unrevoke_subject(text, text)
    TO jwt_guard_admin;
GRANT SELECT ON jwt_guard.keys, jwt_guard.issuers, jwt_guard.revocations TO jwt_guard_admin;

-- Operators: explain a token, lint the set-up, policies written for Supabase or PostgREST.
CREATE FUNCTION "explain"(
	"token" TEXT, /* Option < & str > */
	"role" TEXT DEFAULT NULL /* Option < & str > */
) RETURNS TABLE (
	"step" INT,  /* i32 */
	"check_name" TEXT,  /* String */
	"ok" bool,  /* Option < bool > */
	"detail" TEXT  /* String */
)
VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'explain_wrapper';

CREATE FUNCTION jwt_guard.check_setup()
RETURNS TABLE (severity text, object text, finding text, fix text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $check$
DECLARE
    logins text[] := ARRAY(SELECT btrim(x) FROM unnest(string_to_array(coalesce(current_setting('pg_jwt_guard.login_roles', true), ''), ',')) x WHERE btrim(x) <> '');
    allowed text[] := ARRAY(SELECT btrim(x) FROM unnest(string_to_array(coalesce(current_setting('pg_jwt_guard.allowed_roles', true), ''), ',')) x WHERE btrim(x) <> '');
    db oid := (SELECT d.oid FROM pg_database d WHERE d.datname = current_database());
    r record;
    v text;
    val text;
BEGIN
    -- The library. shared_preload_libraries is readable by superusers only (planning a query
    -- over it would already fail for others); pg_jwt_guard.request_claims exists only when the
    -- library was loaded at server start.
    IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        val := current_setting('shared_preload_libraries');
        IF NOT ('pg_jwt_guard' = ANY (SELECT btrim(btrim(l), '"') FROM unnest(string_to_array(val, ',')) l)) THEN
            RETURN QUERY SELECT 'error', 'shared_preload_libraries',
                'pg_jwt_guard is not preloaded: authenticate() and every guard refuse to work',
                format('ALTER SYSTEM SET shared_preload_libraries = %L; -- then restart the server',
                       concat_ws(', ', nullif(val, ''), 'pg_jwt_guard'));
        END IF;
    ELSIF current_setting('pg_jwt_guard.request_claims', true) IS NULL THEN
        RETURN QUERY SELECT 'error', 'shared_preload_libraries',
            'pg_jwt_guard is not preloaded: authenticate() and every guard refuse to work',
            'ALTER SYSTEM SET shared_preload_libraries = ''pg_jwt_guard''; -- keep the libraries already listed, then restart the server';
    END IF;
    IF coalesce(current_setting('pg_jwt_guard.issuers', true), '') = ''
       AND NOT EXISTS (SELECT 1 FROM jwt_guard.issuers)
       AND NOT EXISTS (SELECT 1 FROM jwt_guard.keys k WHERE k.issuer IS NOT NULL AND k.status = 'active') THEN
        RETURN QUERY SELECT 'error', 'pg_jwt_guard.issuers',
            'no issuer is configured and no key is bound to an issuer: every token is refused',
            'ALTER SYSTEM SET pg_jwt_guard.issuers = ''https://your-issuer/''; SELECT pg_reload_conf();';
    END IF;
    IF coalesce(current_setting('pg_jwt_guard.audience', true), '') = '' THEN
        RETURN QUERY SELECT 'warning', 'pg_jwt_guard.audience',
            'no audience is required: a token the issuer minted for another API without aud is accepted here',
            'ALTER SYSTEM SET pg_jwt_guard.audience = ''your-api''; SELECT pg_reload_conf();';
    END IF;
    IF cardinality(allowed) = 0 THEN
        RETURN QUERY SELECT 'warning', 'pg_jwt_guard.allowed_roles',
            'no role may be assumed: every token is refused',
            'ALTER SYSTEM SET pg_jwt_guard.allowed_roles = ''app_user''; SELECT pg_reload_conf();';
    END IF;
    IF cardinality(logins) = 0 THEN
        RETURN QUERY SELECT 'warning', 'pg_jwt_guard.login_roles',
            'no login role is listed: sessions are locked down only after their first token',
            'ALTER SYSTEM SET pg_jwt_guard.login_roles = ''authenticator''; SELECT pg_reload_conf();';
    END IF;

    -- Login roles: LOGIN NOINHERIT, member of nothing, owning and holding nothing.
    FOR r IN SELECT l AS name, a.oid, a.rolcanlogin, a.rolinherit, a.rolsuper, a.rolbypassrls,
                    a.rolcreaterole, a.rolcreatedb, a.rolreplication
             FROM unnest(logins) l LEFT JOIN pg_roles a ON a.rolname = l LOOP
        IF r.oid IS NULL THEN
            RETURN QUERY SELECT 'warning', format('role %I', r.name),
                'listed in pg_jwt_guard.login_roles but does not exist', NULL::text;
            CONTINUE;
        END IF;
        IF NOT r.rolcanlogin THEN
            RETURN QUERY SELECT 'warning', format('role %I', r.name),
                'login role cannot log in', format('ALTER ROLE %I LOGIN;', r.name);
        END IF;
        IF r.rolinherit THEN
            RETURN QUERY SELECT 'error', format('role %I', r.name),
                'login role is INHERIT: it would use the privileges of any role it is granted',
                format('ALTER ROLE %I NOINHERIT;', r.name);
        END IF;
        IF r.rolsuper OR r.rolbypassrls OR r.rolcreaterole OR r.rolcreatedb OR r.rolreplication THEN
            RETURN QUERY SELECT 'error', format('role %I', r.name),
                'login role has SUPERUSER, BYPASSRLS, CREATEROLE, CREATEDB or REPLICATION',
                format('ALTER ROLE %I NOSUPERUSER NOBYPASSRLS NOCREATEROLE NOCREATEDB NOREPLICATION;', r.name);
        END IF;
        RETURN QUERY SELECT 'error', format('role %I', r.name),
            format('login role is a member of %I: a client could use its privileges without a token', g.rolname),
            format('REVOKE %I FROM %I;', g.rolname, r.name)
            FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid WHERE m.member = r.oid;
        RETURN QUERY SELECT 'error', format('role %I', r.name),
            format('login role holds %s on %s %s: a client without a token has it', p.privs, p.kind, p.obj),
            format('REVOKE ALL ON %s %s FROM %I;', p.kind, p.obj, r.name)
            FROM (SELECT CASE WHEN c.relkind = 'S' THEN 'SEQUENCE' ELSE 'TABLE' END AS kind, c.oid::regclass::text AS obj,
                         string_agg(a.privilege_type, ', ' ORDER BY a.privilege_type) AS privs
                  FROM pg_class c, aclexplode(c.relacl) a
                  WHERE c.relacl IS NOT NULL AND a.grantee = r.oid
                  GROUP BY 1, 2
                  UNION ALL
                  SELECT 'FUNCTION', f.oid::regprocedure::text, 'EXECUTE'
                  FROM pg_proc f, aclexplode(f.proacl) a
                  WHERE f.proacl IS NOT NULL AND a.grantee = r.oid
                  UNION ALL
                  SELECT 'SCHEMA', quote_ident(n.nspname), string_agg(a.privilege_type, ', ' ORDER BY a.privilege_type)
                  FROM pg_namespace n, aclexplode(n.nspacl) a
                  WHERE n.nspacl IS NOT NULL AND a.grantee = r.oid
                  GROUP BY 1, 2) p;
        IF EXISTS (SELECT 1 FROM pg_shdepend d WHERE d.refclassid = 'pg_authid'::regclass AND d.refobjid = r.oid
                   AND d.deptype = 'o' AND d.dbid IN (0, db)) THEN
            RETURN QUERY SELECT 'error', format('role %I', r.name),
                'login role owns objects: a client without a token could change or read them',
                format('REASSIGN OWNED BY %I TO CURRENT_USER;', r.name);
        END IF;
        IF has_database_privilege(r.oid, db, 'TEMPORARY') THEN
            RETURN QUERY SELECT 'warning', format('role %I', r.name),
                format('login role may create temporary tables in database %I (refused by lockdown; remove it as defence in depth)', current_database()),
                format('REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC, %I;', current_database(), r.name);
        END IF;
        -- Logging as the login role's sessions see it: role and database settings win over the server's.
        FOR v IN SELECT unnest(ARRAY['log_statement', 'log_min_error_statement',
                                     'log_parameter_max_length_on_error', 'log_min_duration_statement']) LOOP
            SELECT coalesce(
                (SELECT substr(c, length(v) + 2) FROM pg_db_role_setting s, unnest(s.setconfig) c
                  WHERE s.setrole = r.oid AND s.setdatabase = db AND c LIKE v || '=%'),
                (SELECT substr(c, length(v) + 2) FROM pg_db_role_setting s, unnest(s.setconfig) c
                  WHERE s.setrole = r.oid AND s.setdatabase = 0 AND c LIKE v || '=%'),
                (SELECT substr(c, length(v) + 2) FROM pg_db_role_setting s, unnest(s.setconfig) c
                  WHERE s.setrole = 0 AND s.setdatabase = db AND c LIKE v || '=%'),
                current_setting(v)) INTO STRICT val;
            IF v = 'log_statement' AND lower(val) = 'all' THEN
                RETURN QUERY SELECT 'error', format('role %I', r.name),
                    'log_statement = all writes every statement, and a token written into one, to the server log',
                    format('ALTER ROLE %I SET log_statement = ''none'';', r.name);
            ELSIF v = 'log_min_error_statement' AND lower(val) IN
                    ('debug5', 'debug4', 'debug3', 'debug2', 'debug1', 'info', 'notice', 'warning', 'error') THEN
                RETURN QUERY SELECT 'warning', format('role %I', r.name),
                    format('log_min_error_statement = %s writes the text of a failed statement, and a token written into it, to the server log', val),
                    format('ALTER ROLE %I SET log_min_error_statement = panic;', r.name);
            ELSIF v = 'log_parameter_max_length_on_error' AND val NOT IN ('0') THEN
                RETURN QUERY SELECT 'error', format('role %I', r.name),
                    'log_parameter_max_length_on_error writes bind parameters, tokens included, of failed statements to the server log',
                    format('ALTER ROLE %I SET log_parameter_max_length_on_error = 0;', r.name);
            ELSIF v = 'log_min_duration_statement' AND val NOT IN ('-1') THEN
                RETURN QUERY SELECT 'warning', format('role %I', r.name),
                    format('log_min_duration_statement = %s writes slow statements, and a token written into one, to the server log', val),
                    format('ALTER ROLE %I SET log_min_duration_statement = -1;', r.name);
            END IF;
        END LOOP;
    END LOOP;

    -- Token roles: nothing a token could use to escape its row level security.
    FOR r IN SELECT l AS name, a.oid, a.rolcanlogin, a.rolsuper FROM unnest(allowed) l LEFT JOIN pg_roles a ON a.rolname = l LOOP
        IF r.oid IS NULL THEN
            RETURN QUERY SELECT 'warning', format('role %I', r.name),
                'listed in pg_jwt_guard.allowed_roles but does not exist', NULL::text;
            CONTINUE;
        END IF;
        IF r.rolcanlogin THEN
            RETURN QUERY SELECT 'warning', format('role %I', r.name),
                'token role can log in: with its password a client needs no token',
                format('ALTER ROLE %I NOLOGIN;', r.name);
        END IF;
        IF r.rolsuper THEN
            -- A superuser is a member of every role: one finding says it all.
            RETURN QUERY SELECT 'error', format('role %I', r.name),
                'token role is a superuser: tokens naming it are refused',
                format('ALTER ROLE %I NOSUPERUSER;', r.name);
            CONTINUE;
        END IF;
        RETURN QUERY SELECT 'error', format('role %I', r.name),
            format('token role %s: tokens naming it are refused', w.why),
            CASE WHEN w.attribute AND w.self THEN format('ALTER ROLE %I NOSUPERUSER NOBYPASSRLS NOCREATEROLE NOCREATEDB NOREPLICATION;', r.name)
                 WHEN w.self THEN NULL
                 ELSE format('REVOKE %I FROM %I;', w.rolname, r.name) END
            FROM (SELECT m.rolname, m.oid = r.oid AS self,
                         (m.rolsuper OR m.rolbypassrls OR m.rolcreaterole OR m.rolcreatedb OR m.rolreplication) AS attribute,
                         CASE
                    WHEN m.rolsuper THEN 'is or belongs to a superuser'
                    WHEN m.rolbypassrls THEN 'is or belongs to a role with BYPASSRLS'
                    WHEN m.rolcreaterole THEN 'is or belongs to a role with CREATEROLE'
                    WHEN m.rolcreatedb THEN 'is or belongs to a role with CREATEDB'
                    WHEN m.rolreplication THEN 'is or belongs to a role with REPLICATION'
                    WHEN m.rolname = 'jwt_guard_admin' THEN 'is or belongs to jwt_guard_admin'
                    WHEN m.rolname ~ '^pg_' AND m.rolname <> 'pg_database_owner' THEN format('belongs to the predefined role %s', m.rolname)
                    WHEN m.rolname = ANY (logins) THEN format('is or belongs to the login role %I', m.rolname)
                    END AS why
                  FROM pg_roles m WHERE pg_has_role(r.oid, m.oid, 'MEMBER')) w
            WHERE w.why IS NOT NULL;
        IF EXISTS (SELECT 1 FROM pg_database d WHERE d.oid = db AND pg_has_role(r.oid, d.datdba, 'MEMBER'))
           OR EXISTS (SELECT 1 FROM pg_extension e WHERE e.extname = 'pg_jwt_guard' AND pg_has_role(r.oid, e.extowner, 'MEMBER')) THEN
            RETURN QUERY SELECT 'error', format('role %I', r.name),
                'token role is or belongs to the owner of this database or of pg_jwt_guard: tokens naming it are refused',
                NULL::text;
        END IF;
        IF EXISTS (SELECT 1 FROM pg_shdepend d WHERE d.refclassid = 'pg_authid'::regclass AND d.refobjid = r.oid
                   AND d.deptype = 'o' AND d.dbid IN (0, db)) THEN
            RETURN QUERY SELECT 'error', format('role %I', r.name),
                'token role owns objects (an owner can alter them or turn row level security off): tokens naming it are refused',
                format('REASSIGN OWNED BY %I TO CURRENT_USER;', r.name);
        END IF;
        RETURN QUERY SELECT CASE WHEN t.priv = 'ALL' THEN 'warning' ELSE 'error' END, format('table %s', t.rel),
            CASE t.priv
              WHEN 'TRIGGER' THEN format('role %I holds TRIGGER: a trigger it creates would see every tenant''s writes; tokens naming it are refused', r.name)
              WHEN 'MAINTAIN' THEN format('role %I holds MAINTAIN: it could lock the table against every tenant; tokens naming it are refused', r.name)
              ELSE format('role %I got GRANT ALL: grant the commands it needs, not TRUNCATE, REFERENCES, TRIGGER', r.name) END,
            CASE t.priv WHEN 'ALL' THEN format('REVOKE TRUNCATE, REFERENCES, TRIGGER ON %s FROM %I;', t.rel, r.name)
                        ELSE format('REVOKE %s ON %s FROM %I;', t.priv, t.rel, r.name) END
            FROM (SELECT c.oid::regclass::text AS rel, a.privilege_type AS priv
                  FROM pg_class c, aclexplode(c.relacl) a
                  WHERE c.relacl IS NOT NULL AND a.privilege_type IN ('TRIGGER', 'MAINTAIN')
                    AND CASE WHEN a.grantee = 0 THEN true ELSE pg_has_role(r.oid, a.grantee, 'MEMBER') END
                  UNION ALL
                  SELECT c.oid::regclass::text, 'ALL'
                  FROM pg_class c, aclexplode(c.relacl) a
                  WHERE c.relacl IS NOT NULL AND a.grantee = r.oid AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
                  GROUP BY c.oid
                  HAVING array_agg(a.privilege_type) @> ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']) t;
    END LOOP;

    -- Tables whose policies read the identity: row level security must be on, and forced.
    FOR r IN SELECT c.oid::regclass::text AS rel, c.relrowsecurity, c.relforcerowsecurity,
                    bool_or(e.expr ~ 'current_setting\(''request\.jwt\.claims''') AS reads_claims,
                    bool_or(e.expr ~ 'current_setting\(''request\.(jwt\.claim\.|headers|cookies|method|path)') AS reads_placeholder
             FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid,
                  LATERAL (SELECT concat_ws(' ', pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid)) AS expr) e
             WHERE e.expr ~ '(jwt_guard\.|auth\.(uid|jwt|role|email)\(|current_setting\(''request\.)'
             GROUP BY c.oid LOOP
        IF NOT r.relrowsecurity THEN
            RETURN QUERY SELECT 'error', format('table %s', r.rel),
                'its policies read the token identity but row level security is not enabled: they do nothing',
                format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY;', r.rel);
        END IF;
        IF NOT r.relforcerowsecurity THEN
            RETURN QUERY SELECT 'warning', format('table %s', r.rel),
                'row level security is not forced: the table owner bypasses its policies',
                format('ALTER TABLE %s FORCE ROW LEVEL SECURITY;', r.rel);
        END IF;
        IF r.reads_claims AND coalesce(current_setting('pg_jwt_guard.request_claims', true), 'off') <> 'on' THEN
            RETURN QUERY SELECT 'error', format('table %s', r.rel),
                'a policy reads current_setting(''request.jwt.claims''), which any client can set and authenticate() does not fill: see install_compat(''postgrest'')',
                NULL::text;
        END IF;
        IF r.reads_placeholder THEN
            RETURN QUERY SELECT 'error', format('table %s', r.rel),
                'a policy reads current_setting(''request.jwt.claim.…'', ''request.headers'', …), which any client can set: use the jwt_guard accessors',
                NULL::text;
        END IF;
    END LOOP;

    -- Helpers such as Supabase's auth.uid() that read a setting any client can set.
    RETURN QUERY SELECT 'error', format('function %s', f.oid::regprocedure),
        'it reads current_setting(''request.…''), which any client can set, and policies call it',
        CASE WHEN f.pronamespace::regnamespace::text = 'auth' AND f.proname IN ('uid', 'role', 'email', 'jwt')
             THEN 'SELECT jwt_guard.install_compat(''supabase'');' END
        FROM pg_proc f
        WHERE f.prolang IN (SELECT l.oid FROM pg_language l WHERE l.lanname IN ('sql', 'plpgsql'))
          AND coalesce(f.prosrc, '') || coalesce(pg_get_function_sqlbody(f.oid), '') ~ 'current_setting\s*\(\s*''request\.'
          AND (coalesce(current_setting('pg_jwt_guard.request_claims', true), 'off') <> 'on'
               OR coalesce(f.prosrc, '') || coalesce(pg_get_function_sqlbody(f.oid), '') ~ 'request\.(jwt\.claim\.|headers|cookies|method|path)')
          AND EXISTS (SELECT 1 FROM pg_policy p
                      WHERE concat_ws(' ', pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid))
                            ~ ('(^|[^a-z_])' || f.proname || '\('))
        ORDER BY 2;

    -- Large objects are not row-level secured: who may create them, or import files as them.
    RETURN QUERY SELECT 'warning', format('function %s', f.oid::regprocedure),
        'PUBLIC may create or remove large objects with it (large objects have no row level security)',
        format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC;', f.oid::regprocedure)
        FROM pg_proc f
        WHERE f.pronamespace = 'pg_catalog'::regnamespace
          AND f.proname IN ('lo_create', 'lo_creat', 'lo_from_bytea', 'lo_import', 'lo_unlink')
          AND has_function_privilege('public', f.oid, 'EXECUTE')
        ORDER BY 2;
END
$check$;
REVOKE EXECUTE ON FUNCTION jwt_guard.check_setup() FROM PUBLIC;

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
REVOKE EXECUTE ON FUNCTION jwt_guard.explain(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION jwt_guard.explain(text, text), jwt_guard.check_setup() TO jwt_guard_admin;

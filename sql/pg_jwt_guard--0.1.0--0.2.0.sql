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

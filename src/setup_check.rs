//! `jwt_guard.check_setup()`: lints the installation against the operator rules of
//! docs/security.md. Plain SQL over the catalogs, the settings and the views `jwt_guard.keys`
//! and `jwt_guard.issuers` (so `jwt_guard_admin` can run it: it is not SECURITY DEFINER,
//! like every function of the extension). One row per finding, with a
//! runnable fix where one exists. Findings are `error` (a token or a neighbour can get more
//! than intended) or `warning` (defence in depth is missing).

pgrx::extension_sql!(
    r#"
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
"#,
    name = "check_setup",
    requires = ["key_store", "issuer_profiles"]
);

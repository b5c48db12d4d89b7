-- jwt_guard.check_setup(): each rule finds what it is about, and its fix removes the finding.
\set VERBOSITY terse
-- The MAINTAIN privilege exists from PostgreSQL 17 on (GRANT ALL includes it there): its
-- findings are counted per version and left out of the listings below.
CREATE FUNCTION t.lint() RETURNS SETOF record LANGUAGE sql AS $$
    SELECT severity, object, finding, fix FROM jwt_guard.check_setup() WHERE finding NOT LIKE '%MAINTAIN%'
$$;
CREATE FUNCTION t.maintain_findings(on_17 int) RETURNS boolean LANGUAGE sql AS $$
    SELECT count(*) = CASE WHEN current_setting('server_version_num')::int >= 170000 THEN on_17 ELSE 0 END
    FROM jwt_guard.check_setup() WHERE finding LIKE '%MAINTAIN%'
$$;
-- The suite's own configuration lists roles in pg_jwt_guard.allowed_roles precisely so that
-- they are refused (superuser, BYPASSRLS, owners, ...): the lint names each of them.
SELECT * FROM t.lint() AS l(severity text, object text, finding text, fix text) ORDER BY 2, 3;
SELECT t.maintain_findings(1);  -- maintain_holder on orders
CREATE TEMP TABLE baseline AS SELECT * FROM jwt_guard.check_setup();
-- A deliberately wrong setup.
GRANT app_reader TO authenticator;
GRANT SELECT ON orders TO authenticator;
ALTER ROLE authenticator INHERIT;
ALTER ROLE authenticator SET log_statement = 'all';
ALTER ROLE authenticator SET log_parameter_max_length_on_error = 64;
ALTER ROLE authenticator SET log_min_duration_statement = 0;
CREATE TABLE lint_no_rls (id int, tenant_id text);
CREATE POLICY p ON lint_no_rls USING (tenant_id = jwt_guard.tenant());
CREATE TABLE lint_not_forced (id int, owner_id text);
ALTER TABLE lint_not_forced ENABLE ROW LEVEL SECURITY;
CREATE POLICY p ON lint_not_forced USING (owner_id = jwt_guard.claim('sub'));
CREATE TABLE lint_postgrest (id int, tenant_id text);
ALTER TABLE lint_postgrest ENABLE ROW LEVEL SECURITY;
ALTER TABLE lint_postgrest FORCE ROW LEVEL SECURITY;
CREATE POLICY p ON lint_postgrest
    USING (tenant_id = current_setting('request.jwt.claims', true)::jsonb ->> 'tenant_id');
GRANT ALL ON lint_postgrest TO app_user;
-- A helper written the way Supabase's own auth.uid() reads the claims, and a policy on a header.
CREATE SCHEMA lint_auth;
CREATE FUNCTION lint_auth.uid() RETURNS uuid LANGUAGE sql STABLE
    AS $$ SELECT nullif(current_setting('request.jwt.claim.sub', true), '')::uuid $$;
CREATE TABLE lint_helper (id uuid, origin text);
ALTER TABLE lint_helper ENABLE ROW LEVEL SECURITY;
ALTER TABLE lint_helper FORCE ROW LEVEL SECURITY;
CREATE POLICY p ON lint_helper USING (id = lint_auth.uid());
CREATE POLICY q ON lint_helper USING (origin = current_setting('request.headers', true)::json ->> 'origin');
ALTER ROLE app_reader LOGIN;
SELECT * FROM t.lint() AS l(severity text, object text, finding text, fix text)
EXCEPT SELECT * FROM baseline ORDER BY 2, 3;
SELECT t.maintain_findings(2);  -- and app_user on lint_postgrest, from GRANT ALL
-- Every suggested fix runs, and afterwards only the finding without a fix is left.
DO $$
DECLARE f text;
BEGIN
    FOR f IN SELECT c.fix FROM jwt_guard.check_setup() c WHERE c.fix IS NOT NULL
             EXCEPT SELECT b.fix FROM baseline b WHERE b.fix IS NOT NULL LOOP
        EXECUTE f;
    END LOOP;
END $$;
SELECT severity, object, finding FROM jwt_guard.check_setup()
EXCEPT SELECT severity, object, finding FROM baseline ORDER BY 2, 3;
-- Back to the suite's setup.
DROP TABLE lint_no_rls, lint_not_forced, lint_postgrest, lint_helper;
DROP SCHEMA lint_auth CASCADE;
ALTER ROLE authenticator RESET ALL;
ALTER ROLE authenticator NOINHERIT;
ALTER ROLE app_reader NOLOGIN;
SELECT count(*) AS new_findings FROM (SELECT * FROM jwt_guard.check_setup() EXCEPT SELECT * FROM baseline) n;
-- Not for the login role or clients.
\c - authenticator
SELECT count(*) FROM jwt_guard.check_setup();

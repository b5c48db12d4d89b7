-- install_compat('supabase'): a Supabase-style schema runs unchanged on verified tokens, and a
-- forged request.jwt.claims changes nothing.
\set VERBOSITY terse
\getenv tok_user TOK_SUPA_USER
\getenv tok_other TOK_SUPA_OTHER
SELECT jwt_guard.install_compat('supabase');
SELECT jwt_guard.install_compat('supabase');  -- again: idempotent
SELECT p.proname, p.provolatile, p.proparallel, pg_get_userbyid(p.proowner) = current_user AS owned_by_installer,
       pg_get_function_result(p.oid) AS returns
FROM pg_proc p WHERE p.pronamespace = 'auth'::regnamespace ORDER BY 1;
SELECT has_schema_privilege('public', 'auth', 'CREATE') AS public_may_create;
SELECT t.try($$SELECT jwt_guard.install_compat('hasura')$$);
SELECT t.try($$SELECT jwt_guard.install_compat('postgrest')$$);
-- As Supabase writes them: profiles by auth.uid(), notes by a claim of auth.jwt().
CREATE TABLE profiles (id uuid PRIMARY KEY, email text NOT NULL);
ALTER TABLE profiles ENABLE ROW LEVEL SECURITY;
ALTER TABLE profiles FORCE ROW LEVEL SECURITY;
CREATE POLICY own_profile ON profiles USING (auth.uid() = id) WITH CHECK (auth.uid() = id);
CREATE TABLE team_notes (id int PRIMARY KEY, tenant_id text NOT NULL, body text);
ALTER TABLE team_notes ENABLE ROW LEVEL SECURITY;
ALTER TABLE team_notes FORCE ROW LEVEL SECURITY;
CREATE POLICY by_team ON team_notes USING ((auth.jwt() ->> 'tenant_id') = tenant_id AND auth.role() = 'app_user');
GRANT SELECT, INSERT, UPDATE ON profiles, team_notes TO app_user;
INSERT INTO profiles VALUES ('1b4e28ba-2fa1-11d2-883f-0016d3cca427', 'user@example.test'),
                            ('6f1c8e0a-0b1d-4c5e-9f00-000000000002', 'other@example.test');
INSERT INTO team_notes VALUES (1, 'acme', 'a'), (2, 'acme', 'b'), (3, 'globex', 'g');
\c - tester
BEGIN;
SELECT t.auth(:'tok_user');
SELECT auth.uid(), auth.role(), auth.email(), auth.jwt() ->> 'tenant_id' AS tenant;
SELECT email FROM profiles;
SELECT id FROM team_notes ORDER BY id;
-- The helpers are inlined: the policy reads the accessor directly.
SELECT t.explain('SELECT * FROM profiles');
-- A forged request.jwt.claims: Supabase's own helpers would believe it; these do not.
SET LOCAL request.jwt.claims = '{"sub": "6f1c8e0a-0b1d-4c5e-9f00-000000000002", "tenant_id": "globex", "role": "app_user"}';
SELECT auth.uid(), auth.jwt() ->> 'tenant_id' AS tenant;
SELECT email FROM profiles;
SELECT id FROM team_notes ORDER BY id;
-- Writing another user's row is refused by the same policy.
SELECT t.try($$INSERT INTO profiles VALUES ('6f1c8e0a-0b1d-4c5e-9f00-000000000099', 'x@example.test')$$);
-- The helpers cannot be replaced from a token.
SELECT t.try($$CREATE OR REPLACE FUNCTION auth.uid() RETURNS uuid LANGUAGE sql RETURN '6f1c8e0a-0b1d-4c5e-9f00-000000000002'::uuid$$);
COMMIT;
-- The other user, same backend; then no token at all.
BEGIN;
SELECT t.auth(:'tok_other');
SELECT email FROM profiles;
SELECT id FROM team_notes ORDER BY id;
COMMIT;
SELECT auth.uid(), auth.jwt(), auth.role(), auth.email();
\c - postgres
-- The helpers depend on the accessors they call: the extension cannot go from under them.
SELECT p.proname, d.refobjid::regprocedure AS depends_on
FROM pg_proc p JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid
    AND d.refclassid = 'pg_proc'::regclass
WHERE p.pronamespace = 'auth'::regnamespace ORDER BY 1;
DROP TABLE profiles, team_notes;

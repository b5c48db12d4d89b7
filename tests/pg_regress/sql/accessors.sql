-- Claim accessors: values, JSON Pointer, typed helpers, NULL without identity, and no way to
-- forge the claims from SQL.
\set VERBOSITY terse
\c - tester
\getenv tok_rich TOK_RICH_CLAIMS
\getenv tok_acme TOK_TENANT_ACME
\getenv tok_globex TOK_TENANT_GLOBEX
\getenv tok_no_tenant TOK_NO_TENANT
-- Without identity everything is NULL (is_authenticated is false).
SELECT jwt_guard.claims() IS NULL AS claims, jwt_guard.claim('sub') IS NULL AS claim,
       jwt_guard.sub() IS NULL AS sub, jwt_guard.tenant() IS NULL AS tenant,
       jwt_guard.has_scope('x') IS NULL AS has_scope, jwt_guard.claim_uuid('x') IS NULL AS uuid,
       jwt_guard.claim_bigint('x') IS NULL AS bigint, jwt_guard.is_authenticated();
BEGIN;
SELECT jwt_guard.authenticate(:'tok_rich') IS NOT NULL AS ok;
SELECT jwt_guard.sub(), jwt_guard.tenant(), jwt_guard.claim('role') AS role;
SELECT jwt_guard.claim('org') AS org;
SELECT jwt_guard.claim('/org/name') AS name, jwt_guard.claim('/org/id') AS id,
       jwt_guard.claim('/org/tags/1') AS tag, jwt_guard.claim('/org/a~1b') AS escaped,
       jwt_guard.claim('/org/missing') IS NULL AS missing, jwt_guard.claim('missing') IS NULL AS missing2;
SELECT jwt_guard.claim_uuid('user_uuid'), jwt_guard.claim_uuid('bad_uuid') IS NULL AS bad_uuid,
       jwt_guard.claim_uuid('sub') IS NULL AS sub_uuid;
SELECT jwt_guard.claim_bigint('account'), jwt_guard.claim_bigint('account_str'),
       jwt_guard.claim_bigint('sub') IS NULL AS mistyped, jwt_guard.claim_bigint('org') IS NULL AS object;
SELECT jwt_guard.has_scope('read:orders') AS read, jwt_guard.has_scope('write:orders') AS write,
       jwt_guard.has_scope('READ:orders') AS upper, jwt_guard.has_scope('read') AS prefix,
       jwt_guard.has_scope('') AS empty;
SELECT jsonb_typeof(jwt_guard.claims()) AS type, jwt_guard.claims() ->> 'iss' AS iss,
       jwt_guard.claims() -> 'org' ->> 'name' AS name;
COMMIT;
-- scp as an array.
BEGIN;
SELECT jwt_guard.authenticate(:'tok_globex') IS NOT NULL AS ok;
SELECT jwt_guard.has_scope('orders:read') AS read, jwt_guard.has_scope('orders:write') AS write;
COMMIT;
-- A token without the tenant claim: tenant() is NULL and the policy shows nothing.
BEGIN;
SELECT jwt_guard.authenticate(:'tok_no_tenant') IS NOT NULL AS ok;
SELECT jwt_guard.tenant() IS NULL AS no_tenant, count(*) FROM orders;
COMMIT;
-- Forging: the carrier setting refuses every write that is not the extension's.
BEGIN;
SELECT jwt_guard.authenticate(:'tok_acme') IS NOT NULL AS ok;
SELECT t.try($$SET pg_jwt_guard.identity = '{"claims":{"sub":"victim"}}'$$);
SELECT t.try($$SET LOCAL pg_jwt_guard.identity = ''$$);
SELECT t.try($$SELECT set_config('pg_jwt_guard.identity', '', true)$$);
SELECT t.try($$RESET pg_jwt_guard.identity$$);
-- The carrier is not even visible in pg_settings to the login role, so this updates nothing.
SELECT t.try($$UPDATE pg_settings SET setting = '' WHERE name = 'pg_jwt_guard.identity'$$);
SELECT jwt_guard.sub(), jwt_guard.tenant();
-- Placeholder settings play no part.
SET LOCAL request.jwt.claims = '{"sub":"victim","tenant_id":"globex"}';
SET LOCAL request.jwt.claim.tenant_id = 'globex';
SELECT jwt_guard.sub(), jwt_guard.tenant(), count(*) FROM orders WHERE tenant_id = 'globex';
COMMIT;
-- Even a superuser cannot write the carrier.
\c - postgres
SELECT t.try($$SET pg_jwt_guard.identity = '{"claims":{}}'$$);
SELECT t.try($$ALTER ROLE tester SET pg_jwt_guard.identity = '{"claims":{}}'$$);
ALTER SYSTEM SET pg_jwt_guard.identity = '{"claims":{}}';
-- Accessor properties.
SELECT proname, provolatile, proparallel FROM pg_proc
WHERE pronamespace = 'jwt_guard'::regnamespace ORDER BY proname;

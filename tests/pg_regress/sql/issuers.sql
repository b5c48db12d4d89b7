-- Issuer profiles, keys identified by (issuer, kid), and sync_jwks as identity providers
-- publish their key sets. Administration runs as the superuser; tokens are tried as tester.
\set VERBOSITY terse
\getenv idp_a IDP_A
\getenv idp_b IDP_B
\getenv jwks_a JWKS_IDP_A
\getenv jwks_b JWKS_IDP_B
\getenv jwks_a_rotated JWKS_IDP_A_ROTATED
\getenv tok_a TOK_IDP_A
\getenv tok_b TOK_IDP_B
\getenv tok_b_claims_a TOK_IDP_B_CLAIMS_A
\getenv tok_a_day TOK_IDP_A_DAY
\getenv tok_a_no_aud TOK_IDP_A_NO_AUD
\getenv tok_a_org_role TOK_IDP_A_ORG_ROLE
\getenv tok_a_rotated TOK_IDP_A_ROTATED
\getenv tok_a_misspelt TOK_IDP_A_MISSPELT
\getenv tok_a_duplicate TOK_IDP_A_DUPLICATE
-- Without a profile, these issuers are not accepted (not in pg_jwt_guard.issuers).
SELECT * FROM jwt_guard.sync_jwks(:'idp_a', :'jwks_a');
\c - tester
SELECT t.auth(:'tok_a');
\c - postgres
-- A profile accepts its issuer. Both issuers publish kid "1": keys are told apart by issuer.
SELECT jwt_guard.set_issuer(:'idp_a');
SELECT jwt_guard.set_issuer(:'idp_b');
SELECT * FROM jwt_guard.sync_jwks(:'idp_b', :'jwks_b');
SELECT kid, alg, issuer, status FROM jwt_guard.keys WHERE issuer IN (:'idp_a', :'idp_b') ORDER BY issuer, kid;
-- Idempotent: the same document again changes nothing.
SELECT * FROM jwt_guard.sync_jwks(:'idp_a', :'jwks_a');
\c - tester
SELECT t.auth(:'tok_a');
SELECT t.auth(:'tok_b');
-- B's key with A's name: A's kid "1" is looked up, and B's signature does not verify with it.
SELECT t.auth(:'tok_b_claims_a');
-- A kid no key of the token's issuer has, but another issuer's does: the signature is checked
-- with that key and the refusal says what is wrong, not "unknown kid". A misspelt issuer is
-- refused by the issuer rule; a payload that cannot be read, by its own rule.
SELECT t.auth(:'tok_a_misspelt');
SELECT t.auth(:'tok_a_duplicate');
-- The global policy applies until the profile overrides it.
SELECT t.auth(:'tok_a_day');
SELECT t.auth(:'tok_a_no_aud');
SELECT t.auth(:'tok_a_org_role');
-- A profile's values override the global settings for its issuer only; each call replaces the
-- whole profile (NULL keeps the global setting).
\c - postgres
SELECT jwt_guard.set_issuer(:'idp_a', max_lifetime => '24 hours');
\c - tester
SELECT t.auth(:'tok_a_day');
SELECT t.auth(:'tok_a_no_aud');
\c - postgres
-- A refusal names the limit that applied: the profile's own value, not the setting's.
SELECT jwt_guard.set_issuer(:'idp_a', max_lifetime => '90 minutes', audience => '{billing-api}');
\c - tester
SELECT t.auth(:'tok_a_day');
SELECT t.auth(:'tok_a');
\c - postgres
-- An empty audience list: like an empty pg_jwt_guard.audience, tokens without aud (Cognito access
-- tokens, Clerk session tokens) pass and tokens with aud are refused.
SELECT jwt_guard.set_issuer(:'idp_a', audience => '{}');
\c - tester
SELECT t.auth(:'tok_a_no_aud');
SELECT t.auth(:'tok_a');
\c - postgres
-- IdP role names mapped to database roles (Clerk's org:admin).
SELECT jwt_guard.set_issuer(:'idp_a', role_claim => 'org_role', role_map => '{"org:admin": "app_user"}');
SELECT iss, audience, max_lifetime, role_claim, role_map FROM jwt_guard.issuers ORDER BY iss;
\c - tester
SELECT t.auth(:'tok_a_org_role');
SELECT t.auth(:'tok_a');
-- B keeps the global policy; A's 24-hour lifetime went with the profile it replaced.
SELECT t.auth(:'tok_b');
SELECT t.auth(:'tok_a_day');
-- Rotation: the new document adds kid "2"; retire_missing retires kid "1" of A only.
\c - postgres
SELECT jwt_guard.set_issuer(:'idp_a');
SELECT * FROM jwt_guard.sync_jwks(:'idp_a', :'jwks_a_rotated', retire_missing => true);
SELECT kid, issuer, status FROM jwt_guard.keys WHERE issuer IN (:'idp_a', :'idp_b') ORDER BY issuer, kid;
\c - tester
SELECT t.auth(:'tok_a');
SELECT t.auth(:'tok_a_rotated');
SELECT t.auth(:'tok_b');
-- A stored kid whose material changed is never silently replaced.
\c - postgres
SELECT * FROM jwt_guard.sync_jwks(:'idp_b', :'jwks_a_rotated');
SELECT * FROM jwt_guard.sync_jwks(:'idp_a', replace(:'jwks_b', '"kid": "1"', '"kid": "2"')::jsonb);
-- With retire_missing, the stored key is retired: its material is no longer published.
BEGIN;
SELECT * FROM jwt_guard.sync_jwks(:'idp_a', replace(:'jwks_b', '"kid": "1"', '"kid": "2"')::jsonb, retire_missing => true);
ROLLBACK;
-- Bad input.
SELECT * FROM jwt_guard.sync_jwks(:'idp_a', '{"kid": "x"}');
SELECT * FROM jwt_guard.sync_jwks(NULL, '{"keys": []}');
SELECT jwt_guard.set_issuer(:'idp_a', max_lifetime => '31 days');
SELECT jwt_guard.set_issuer(:'idp_a', role_map => '{"org:admin": "pg_monitor"}');
SELECT jwt_guard.set_issuer(:'idp_a', jwks_uri => 'http://insecure.test/jwks');
SELECT jwt_guard.set_issuer('');
-- Claim names: not empty; a JSON Pointer (starting with /) has no escape but ~0 and ~1.
SELECT jwt_guard.set_issuer(:'idp_a', role_claim => '/realm_access~roles');
SELECT jwt_guard.set_issuer(:'idp_a', tenant_claim => '');
SELECT jwt_guard.set_issuer(:'idp_a', permissions_claim => '/perms~');
\set VERBOSITY default
SET pg_jwt_guard.role_claim = '/app_metadata/db~role';
\set VERBOSITY terse
SET pg_jwt_guard.tenant_claim = '';
SET pg_jwt_guard.permissions_claim = '/a~2b';
-- Valid pointers are accepted, and so are plain names holding / or ~ (only a leading / makes a pointer).
SET pg_jwt_guard.role_claim = '/https:~1~1hasura.io~1jwt~1claims/x-hasura-default-role';
SET pg_jwt_guard.tenant_claim = 'https://example.test/tenant~x';
SHOW pg_jwt_guard.role_claim;
RESET pg_jwt_guard.role_claim;
RESET pg_jwt_guard.tenant_claim;
-- Only the superuser administers issuers and keys.
\c - tester
SELECT t.try($$SELECT jwt_guard.set_issuer('https://evil.test')$$);
SELECT t.try($$SELECT * FROM jwt_guard.sync_jwks('https://evil.test', '{"keys": []}')$$);
SELECT t.try('SELECT count(*) FROM jwt_guard.issuers');
SELECT t.try('SELECT jwt_guard.refresh_jwks()');
SELECT t.try('SELECT count(*) FROM jwt_guard.jwks_status');
-- Dropping a profile stops its issuer: its keys are retired with it.
\c - postgres
SELECT jwt_guard.drop_issuer(:'idp_b');
SELECT jwt_guard.drop_issuer(:'idp_b');
\c - tester
SELECT t.auth(:'tok_b');
\c - postgres
SELECT kid, status FROM jwt_guard.keys WHERE issuer = :'idp_b' ORDER BY kid;
SELECT jwt_guard.retire_key('1', :'idp_b');
SELECT jwt_guard.drop_issuer(:'idp_a');

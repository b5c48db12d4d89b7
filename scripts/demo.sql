-- pg_jwt_guard demo, run as the login role "authenticator" (no privileges, no memberships).
\set VERBOSITY default
\set SHOW_CONTEXT never
\getenv tok_acme TOK_ACME
\getenv tok_globex TOK_GLOBEX
\getenv tok_expired TOK_EXPIRED
\getenv tok_other_aud TOK_OTHER_AUD
\getenv tok_superuser TOK_SUPERUSER
-- Without a token the login role sees nothing at all:
SELECT current_user, jwt_guard.tenant();
SELECT count(*) FROM invoices;
-- Tenant acme (a real application passes the token as a bind parameter):
BEGIN;
SELECT jwt_guard.authenticate(:'tok_acme') ->> 'sub' AS sub;
SELECT current_user, jwt_guard.tenant();
SELECT * FROM invoices ORDER BY id;
COMMIT;
-- Tenant globex, same connection, next transaction:
BEGIN;
SELECT jwt_guard.authenticate(:'tok_globex') ->> 'sub' AS sub;
SELECT current_user, jwt_guard.tenant();
SELECT * FROM invoices ORDER BY id;
-- globex cannot write into acme's rows:
INSERT INTO invoices (tenant_id, customer, amount) VALUES ('acme', 'sneaky', 1);
ROLLBACK;
-- The identity ended with the transaction:
SELECT current_user, jwt_guard.tenant();
-- Refused: an expired token, a token for another audience, a token asking for a superuser role.
SELECT jwt_guard.authenticate(:'tok_expired');
SELECT jwt_guard.authenticate(:'tok_other_aud');
SELECT jwt_guard.authenticate(:'tok_superuser');

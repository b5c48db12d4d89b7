-- Encoding, structure and header rules (docs/threat-model.md §2.1, §2.3).
\set VERBOSITY terse
\c - tester
\getenv tok_none_alg TOK_NONE_ALG
\getenv tok_crit TOK_HDR_CRIT
\getenv tok_jku TOK_HDR_JKU
\getenv tok_jwk TOK_HDR_JWK
\getenv tok_x5c TOK_HDR_X5C
\getenv tok_cty TOK_HDR_CTY
\getenv tok_typ_bad TOK_HDR_TYP_BAD
\getenv tok_typ_atjwt TOK_HDR_TYP_ATJWT
\getenv tok_kid_unknown TOK_KID_UNKNOWN
\getenv tok_kid_injection TOK_KID_INJECTION
\getenv tok_kid_traversal TOK_KID_TRAVERSAL
\getenv tok_no_kid TOK_NO_KID_HS256
\getenv tok_bearer TOK_BEARER
\getenv tok_padded TOK_PADDED
\getenv tok_two TOK_TWO_SEGMENTS
\getenv tok_four TOK_FOUR_SEGMENTS
\getenv tok_huge TOK_HUGE
\getenv tok_payload_array TOK_PAYLOAD_ARRAY
\getenv tok_not_json TOK_NOT_JSON
\getenv tok_dup_role TOK_DUP_ROLE
SELECT t.auth(:'tok_none_alg');
SELECT t.auth(:'tok_crit');
SELECT t.auth(:'tok_jku');
SELECT t.auth(:'tok_jwk');
SELECT t.auth(:'tok_x5c');
SELECT t.auth(:'tok_cty');
SELECT t.auth(:'tok_typ_bad');
SELECT t.auth(:'tok_typ_atjwt');
SELECT t.auth(:'tok_kid_unknown');
SELECT t.auth(:'tok_kid_injection');
SELECT t.auth(:'tok_kid_traversal');
-- No kid: accepted because exactly one active HS256 key exists.
SELECT t.auth(:'tok_no_kid');
SELECT t.auth(:'tok_bearer');
SELECT t.auth(:'tok_padded');
SELECT t.auth(:'tok_two');
SELECT t.auth(:'tok_four');
SELECT t.auth(:'tok_huge');
SELECT t.auth(' ' || :'tok_no_kid');
SELECT t.auth(:'tok_no_kid' || E'\n');
SELECT t.auth(:'tok_payload_array');
SELECT t.auth(:'tok_not_json');
SELECT t.auth(:'tok_dup_role');
SELECT current_user, jwt_guard.is_authenticated();

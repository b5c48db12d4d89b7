-- pg_jwt_guard 0.2.0 -> 0.2.1
-- The cache invalidation triggers fire per row and ALWAYS, so that writes made with
-- session_replication_role = replica (a logical replication subscriber applying rows) reach
-- every backend's caches too.

DROP TRIGGER key_store_changed ON jwt_guard.key_store;
CREATE TRIGGER key_store_changed AFTER INSERT OR UPDATE OR DELETE ON jwt_guard.key_store
    FOR EACH ROW EXECUTE FUNCTION jwt_guard.key_store_changed();
CREATE TRIGGER key_store_truncated AFTER TRUNCATE ON jwt_guard.key_store
    FOR EACH STATEMENT EXECUTE FUNCTION jwt_guard.key_store_changed();
ALTER TABLE jwt_guard.key_store ENABLE ALWAYS TRIGGER key_store_changed, ENABLE ALWAYS TRIGGER key_store_truncated;

DROP TRIGGER issuer_profiles_changed ON jwt_guard.issuer_profiles;
CREATE TRIGGER issuer_profiles_changed AFTER INSERT OR UPDATE OR DELETE ON jwt_guard.issuer_profiles
    FOR EACH ROW EXECUTE FUNCTION jwt_guard.key_store_changed();
CREATE TRIGGER issuer_profiles_truncated AFTER TRUNCATE ON jwt_guard.issuer_profiles
    FOR EACH STATEMENT EXECUTE FUNCTION jwt_guard.key_store_changed();
ALTER TABLE jwt_guard.issuer_profiles ENABLE ALWAYS TRIGGER issuer_profiles_changed, ENABLE ALWAYS TRIGGER issuer_profiles_truncated;

DROP TRIGGER revoked_tokens_changed ON jwt_guard.revoked_tokens;
CREATE TRIGGER revoked_tokens_changed AFTER INSERT OR UPDATE OR DELETE ON jwt_guard.revoked_tokens
    FOR EACH ROW EXECUTE FUNCTION jwt_guard.key_store_changed();
CREATE TRIGGER revoked_tokens_truncated AFTER TRUNCATE ON jwt_guard.revoked_tokens
    FOR EACH STATEMENT EXECUTE FUNCTION jwt_guard.key_store_changed();
ALTER TABLE jwt_guard.revoked_tokens ENABLE ALWAYS TRIGGER revoked_tokens_changed, ENABLE ALWAYS TRIGGER revoked_tokens_truncated;

DROP TRIGGER revoked_subjects_changed ON jwt_guard.revoked_subjects;
CREATE TRIGGER revoked_subjects_changed AFTER INSERT OR UPDATE OR DELETE ON jwt_guard.revoked_subjects
    FOR EACH ROW EXECUTE FUNCTION jwt_guard.key_store_changed();
CREATE TRIGGER revoked_subjects_truncated AFTER TRUNCATE ON jwt_guard.revoked_subjects
    FOR EACH STATEMENT EXECUTE FUNCTION jwt_guard.key_store_changed();
ALTER TABLE jwt_guard.revoked_subjects ENABLE ALWAYS TRIGGER revoked_subjects_changed, ENABLE ALWAYS TRIGGER revoked_subjects_truncated;

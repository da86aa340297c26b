-- What routers need from the catalog: a per-tenant migration lock, and notifications on the
-- channel `nexacore_catalog` whenever something they cache changes (see tenancy::notify).
-- Triggers, not application code, send them: no code path can change a tenant and forget.

-- Set while the tenant's own schema migration runs: routers answer 503 with a retry hint.
ALTER TABLE tenants ADD COLUMN migrating boolean NOT NULL DEFAULT false;

CREATE FUNCTION nexacore_notify_tenant() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    changed uuid := CASE WHEN TG_OP = 'DELETE' THEN OLD.id ELSE NEW.id END;
BEGIN
    PERFORM pg_notify('nexacore_catalog', json_build_object('kind', 'tenant', 'id', changed)::text);
    RETURN NULL;
END $$;

CREATE TRIGGER tenants_notify AFTER UPDATE OR DELETE ON tenants
    FOR EACH ROW EXECUTE FUNCTION nexacore_notify_tenant();

CREATE FUNCTION nexacore_notify_kind() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('nexacore_catalog', json_build_object('kind', TG_ARGV[0])::text);
    RETURN NULL;
END $$;

CREATE TRIGGER signing_keys_notify AFTER INSERT OR UPDATE OR DELETE ON signing_keys
    FOR EACH STATEMENT EXECUTE FUNCTION nexacore_notify_kind('keys');

CREATE TRIGGER system_settings_notify AFTER UPDATE ON system_settings
    FOR EACH STATEMENT EXECUTE FUNCTION nexacore_notify_kind('settings');

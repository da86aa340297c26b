-- Access can be taken back before a token expires. Every access token carries its membership's
-- epoch (claim `ep`); removing a membership deletes it, and changing its role or the user's
-- password gives it a new epoch, so tokens issued before no longer match. Epochs come from one
-- sequence, so a membership removed and added again never matches its old tokens either.
-- Routers compare on every request (cached) and are told of each change by the trigger below.
CREATE SEQUENCE membership_token_epochs;
ALTER TABLE memberships ADD COLUMN token_epoch bigint NOT NULL DEFAULT nextval('membership_token_epochs');

CREATE FUNCTION nexacore_notify_membership() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    changed_user uuid := CASE WHEN TG_OP = 'DELETE' THEN OLD.user_id ELSE NEW.user_id END;
    changed_tenant uuid := CASE WHEN TG_OP = 'DELETE' THEN OLD.tenant_id ELSE NEW.tenant_id END;
BEGIN
    PERFORM pg_notify('nexacore_catalog',
        json_build_object('kind', 'membership', 'user', changed_user, 'tenant', changed_tenant)::text);
    RETURN NULL;
END $$;

CREATE TRIGGER memberships_notify AFTER INSERT OR UPDATE OR DELETE ON memberships
    FOR EACH ROW EXECUTE FUNCTION nexacore_notify_membership();

-- Refresh tokens: a sign-in starts a family; each refresh uses its token once and gets the next
-- one of the family. A token used twice means it was copied: the whole family is revoked. Tokens
-- are kept only as HMACs under a key derived from the master key.
CREATE TABLE refresh_tokens (
    id          uuid PRIMARY KEY,
    family      uuid NOT NULL,
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    token_hash  bytea NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    -- The family's end: a sign-in lasts at most this long, however often it refreshes.
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    revoked_at  timestamptz
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id, tenant_id) WHERE revoked_at IS NULL;

-- People beyond the first admin: invitations, password resets, and the e-mail that tells them.

-- An invitation to join one company with a role. The code is sent by e-mail and kept only as an
-- HMAC under a key derived from the master key, so the catalog cannot hand it out. At most one
-- pending invitation per (company, address).
CREATE TABLE invitations (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    email       text NOT NULL,
    role        text NOT NULL CHECK (role IN ('admin', 'manager', 'staff')),
    full_name   text,
    code_hash   bytea NOT NULL UNIQUE,
    status      text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'accepted', 'revoked')),
    invited_by  uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    accepted_at timestamptz,
    accepted_by uuid REFERENCES users (id) ON DELETE SET NULL
);
CREATE UNIQUE INDEX invitations_one_pending ON invitations (tenant_id, lower(email)) WHERE status = 'pending';
CREATE INDEX invitations_tenant ON invitations (tenant_id, created_at DESC);

-- A password reset code, single use, short-lived; kept as an HMAC like invitation codes.
CREATE TABLE password_resets (
    id         uuid PRIMARY KEY,
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash  bytea NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at    timestamptz
);
CREATE INDEX password_resets_user ON password_resets (user_id);

-- Outgoing e-mail, written in the transaction of the action that causes it, so a message exists
-- exactly when its action committed. A sender delivers due messages; failures back off
-- (`next_attempt_at`) until `max attempts`, then the message is `failed` and stays for operators.
-- Bodies are sealed (they carry codes); recipient and subject stay readable for `ops mail list`.
CREATE TABLE mail_outbox (
    id              uuid PRIMARY KEY,
    kind            text NOT NULL,
    tenant_id       uuid REFERENCES tenants (id) ON DELETE SET NULL,
    recipient       text NOT NULL,
    subject         text NOT NULL,
    body_sealed     bytea NOT NULL,
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz
);
CREATE INDEX mail_outbox_due ON mail_outbox (next_attempt_at) WHERE status = 'pending';
CREATE INDEX mail_outbox_created ON mail_outbox (created_at DESC);

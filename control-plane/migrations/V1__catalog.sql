-- The control plane's catalog: where every tenant lives, who may sign in, and what operators did.

-- Postgres servers that hold tenant databases. The superuser URL is sealed with the master key:
-- a copy of the catalog alone reveals no credentials.
CREATE TABLE database_servers (
    id               uuid PRIMARY KEY,
    name             text NOT NULL UNIQUE,
    admin_url_sealed bytea NOT NULL,
    -- Where tenant roles connect (the router), without credentials.
    host             text NOT NULL,
    port             integer NOT NULL CHECK (port BETWEEN 1 AND 65535),
    -- Placement weighs load by capacity: a server with twice the capacity takes twice the tenants.
    capacity         integer NOT NULL DEFAULT 1000 CHECK (capacity > 0),
    status           text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'draining', 'disabled')),
    created_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE tenants (
    id                  uuid PRIMARY KEY,
    slug                text NOT NULL,
    name                text NOT NULL,
    status              text NOT NULL
                        CHECK (status IN ('provisioning', 'active', 'suspended', 'deleting', 'deleted')),
    server_id           uuid NOT NULL REFERENCES database_servers (id),
    database_name       text NOT NULL,
    role_name           text NOT NULL,
    -- The tenant-schema version applied to the tenant's database (NULL until provisioned).
    schema_version      integer,
    feature_flags       jsonb NOT NULL DEFAULT '{}'::jsonb,
    maintenance_mode    boolean NOT NULL DEFAULT false,
    maintenance_message text,
    timezone            text NOT NULL,
    currency            text NOT NULL,
    chart_template      text NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    activated_at        timestamptz,
    deleted_at          timestamptz
);

-- A slug is unique among live tenants; a deleted tenant's row stays for audit and frees its slug.
CREATE UNIQUE INDEX tenants_live_slug ON tenants (slug) WHERE status <> 'deleted';
CREATE UNIQUE INDEX tenants_database ON tenants (server_id, database_name) WHERE status <> 'deleted';
CREATE INDEX tenants_status_id ON tenants (status, id);
CREATE INDEX tenants_server_live ON tenants (server_id) WHERE status <> 'deleted';

CREATE TABLE users (
    id            uuid PRIMARY KEY,
    email         text NOT NULL,
    full_name     text NOT NULL,
    -- argon2id in PHC string form.
    password_hash text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_login_at timestamptz
);
CREATE UNIQUE INDEX users_email ON users (lower(email));

CREATE TABLE memberships (
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    tenant_id  uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    role       text NOT NULL CHECK (role IN ('admin', 'manager', 'staff')),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, tenant_id)
);
CREATE INDEX memberships_tenant ON memberships (tenant_id);

-- Idempotency keys of POST /tenants. The fingerprint is an HMAC of the request under the master
-- key, so it can be compared but reveals nothing (the request holds a password). Deleting a
-- half-provisioned tenant deletes its key, so a retry with the same key starts afresh.
CREATE TABLE idempotency_keys (
    scope       text NOT NULL,
    key         text NOT NULL,
    fingerprint text NOT NULL,
    tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, key)
);

-- Ed25519 keys that sign access tokens. Exactly one is current (retired_at IS NULL); retired
-- keys stay in the JWKS until verify_until so tokens they signed keep verifying.
CREATE TABLE signing_keys (
    kid                text PRIMARY KEY,
    public_key         bytea NOT NULL,
    private_key_sealed bytea NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    retired_at         timestamptz,
    verify_until       timestamptz
);
CREATE UNIQUE INDEX signing_keys_one_current ON signing_keys ((true)) WHERE retired_at IS NULL;

CREATE TABLE audit_log (
    id        bigserial PRIMARY KEY,
    at        timestamptz NOT NULL DEFAULT now(),
    actor     text NOT NULL,
    action    text NOT NULL,
    tenant_id uuid,
    details   jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX audit_log_tenant ON audit_log (tenant_id, id);

-- Platform-wide settings: a single row.
CREATE TABLE system_settings (
    id                  boolean PRIMARY KEY DEFAULT true CHECK (id),
    maintenance_mode    boolean NOT NULL DEFAULT false,
    maintenance_message text,
    min_client_version  text NOT NULL DEFAULT '0.0.0',
    latest_version      text NOT NULL DEFAULT '0.1.0',
    updated_at          timestamptz NOT NULL DEFAULT now()
);
INSERT INTO system_settings DEFAULT VALUES;

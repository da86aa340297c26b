-- Backups of tenant databases (pg_dump custom format), one row each: what was asked, where it
-- is, and once done the manifest that travels with the dump. A backup runs while its control
-- plane holds a session advisory lock on the row's key (see `backups::recover`): a `running`
-- row whose lock is free belongs to a process that died, and is settled as `failed`.
CREATE TABLE backups (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants (id),
    kind        text NOT NULL CHECK (kind IN ('manual', 'scheduled', 'final')),
    status      text NOT NULL CHECK (status IN ('running', 'done', 'failed')),
    actor       text NOT NULL,
    -- The dump's path relative to the control plane's backup directory.
    file        text NOT NULL,
    manifest    jsonb,
    error       text,
    started_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    CHECK ((status = 'done') = (manifest IS NOT NULL))
);
CREATE INDEX backups_tenant ON backups (tenant_id, started_at DESC);
CREATE INDEX backups_running ON backups (id) WHERE status = 'running';

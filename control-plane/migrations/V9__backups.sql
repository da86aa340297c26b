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

-- In-place restores: the tenant is fenced (maintenance) while its backup is restored into a
-- fresh database, which is then swapped in. The row names the fresh database before it is
-- created, so a crash at any step is settled from here (see `backups::restore`): before the
-- swap the fresh database is dropped and the tenant unfenced; after it, the old one is dropped.
CREATE TABLE restores (
    id                  uuid PRIMARY KEY,
    tenant_id           uuid NOT NULL REFERENCES tenants (id),
    backup_id           uuid NOT NULL,
    state               text NOT NULL CHECK (state IN ('restoring', 'swapped', 'done', 'failed')),
    old_database        text NOT NULL,
    new_database        text NOT NULL,
    -- The tenant's maintenance before the fence, put back after it.
    was_in_maintenance  boolean NOT NULL,
    maintenance_message text,
    error               text,
    started_at          timestamptz NOT NULL DEFAULT now(),
    finished_at         timestamptz
);
CREATE UNIQUE INDEX restores_one_per_tenant ON restores (tenant_id) WHERE state IN ('restoring', 'swapped');

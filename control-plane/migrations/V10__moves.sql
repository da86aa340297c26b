-- Moves of a tenant's database to another server (see `moves`). The row is written before
-- anything exists on either server and names everything the move creates (the target
-- database; the slot, publication and subscription are named after the row's id), so a crash
-- at any step is settled from here: before `switched` the move is undone (the tenant's route
-- never left the source), from `switched` on it is finished (the route names the target).
-- The catalog route (`tenants.server_id`, `tenants.database_name`) is the only truth about
-- where a tenant is writable.
CREATE TABLE moves (
    id                  uuid PRIMARY KEY,
    tenant_id           uuid NOT NULL REFERENCES tenants (id),
    source_server       uuid NOT NULL REFERENCES database_servers (id),
    target_server       uuid NOT NULL REFERENCES database_servers (id),
    source_database     text NOT NULL,
    target_database     text NOT NULL,
    -- copying: schema copied, replication catching up; fenced: the tenant is in maintenance and
    -- closed on the source; switched: the route names the target; done / failed: settled.
    state               text NOT NULL CHECK (state IN ('copying', 'fenced', 'switched', 'done', 'failed')),
    -- The finer steps with their times, `[{"step": ..., "at": ...}]`, for the operator.
    steps               jsonb NOT NULL DEFAULT '[]'::jsonb,
    drop_source         boolean NOT NULL DEFAULT false,
    -- The tenant's maintenance before the fence, put back after it.
    was_in_maintenance  boolean NOT NULL,
    maintenance_message text,
    actor               text NOT NULL,
    error               text,
    -- How long writes were fenced (maintenance on to maintenance off).
    fence_ms            integer,
    source_dropped_at   timestamptz,
    started_at          timestamptz NOT NULL DEFAULT now(),
    finished_at         timestamptz,
    CHECK (source_server <> target_server OR source_database <> target_database)
);
CREATE UNIQUE INDEX moves_one_per_tenant ON moves (tenant_id) WHERE state IN ('copying', 'fenced', 'switched');
CREATE INDEX moves_tenant ON moves (tenant_id, started_at DESC);
-- Kept source databases still to be dropped (retention).
CREATE INDEX moves_sources_kept ON moves (finished_at) WHERE state = 'done' AND source_dropped_at IS NULL;

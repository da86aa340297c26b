-- Spare tenant databases: copies of a server's template made ahead of need, so a signup adopts
-- one instead of waiting for `CREATE DATABASE` (see control-plane/src/provision/spares.rs).
--
-- A spare's id is the tenant id it will be adopted under: its database and role already carry
-- that id's names (`t_<id>`), so adopting one renames nothing. Claiming deletes the row in the
-- same catalog transaction that inserts the tenant's row, so every `t_` database on a server is
-- accounted for by exactly one row, a tenant's or a spare's.
CREATE TABLE spare_databases (
    id         uuid PRIMARY KEY,
    server_id  uuid NOT NULL REFERENCES database_servers (id),
    -- creating: its creator holds the id's advisory lock while it builds the database; a row
    --           whose lock is free lost its creator, and the reconciler drops what exists.
    -- ready:    a copy of the server's template as it is now, handed to its own role.
    -- retired:  the template changed since (a migration) or the pool shrank; to be dropped.
    status     text NOT NULL CHECK (status IN ('creating', 'ready', 'retired')),
    created_at timestamptz NOT NULL DEFAULT now(),
    ready_at   timestamptz
);
CREATE INDEX spare_databases_ready ON spare_databases (server_id, created_at) WHERE status = 'ready';

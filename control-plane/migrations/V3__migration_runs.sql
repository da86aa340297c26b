-- Bulk schema migrations of tenant databases: runs, each tenant's place in a run, and every
-- attempt of every migration on every database (see control-plane/src/migrations).

CREATE TABLE migration_runs (
    id                     uuid PRIMARY KEY,
    -- running → paused ⇄ running; running → cancelling → cancelled; running → stopped (failure
    -- policy, canary, template) | completed; a run whose engine died is `interrupted` until resumed.
    state                  text NOT NULL CHECK (state IN
                               ('running', 'paused', 'cancelling', 'cancelled', 'stopped', 'completed', 'interrupted')),
    -- A dry run only inspects (the plan): it changes no database and locks no tenant.
    dry_run                boolean NOT NULL,
    target_version         integer NOT NULL CHECK (target_version > 0),
    concurrency            integer NOT NULL CHECK (concurrency BETWEEN 1 AND 256),
    per_server_concurrency integer NOT NULL CHECK (per_server_concurrency BETWEEN 1 AND 256),
    -- The canary wave is the run's first `canary_count` positions; it must all succeed first.
    canary_count           integer NOT NULL DEFAULT 0 CHECK (canary_count >= 0),
    failure_policy         text NOT NULL CHECK (failure_policy IN ('stop', 'continue')),
    -- With `stop`: the run stops once this many tenants have failed.
    max_failures           integer NOT NULL DEFAULT 1 CHECK (max_failures >= 1),
    lock_timeout_ms        integer NOT NULL CHECK (lock_timeout_ms > 0),
    statement_timeout_ms   integer NOT NULL CHECK (statement_timeout_ms > 0),
    stop_reason            text,
    -- One entry per server: its template database's versions before and after.
    templates              jsonb NOT NULL DEFAULT '[]'::jsonb,
    created_by             text NOT NULL,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    finished_at            timestamptz
);
-- At most one run that changes databases is open at a time (dry runs may overlap anything).
CREATE UNIQUE INDEX migration_runs_one_open ON migration_runs ((true))
    WHERE NOT dry_run AND state IN ('running', 'paused', 'cancelling', 'interrupted');
CREATE INDEX migration_runs_created ON migration_runs (created_at DESC, id DESC);

CREATE TABLE migration_run_tenants (
    run_id       uuid NOT NULL REFERENCES migration_runs (id) ON DELETE CASCADE,
    tenant_id    uuid NOT NULL REFERENCES tenants (id),
    -- The order tenants start in; canaries come first.
    position     integer NOT NULL,
    canary       boolean NOT NULL DEFAULT false,
    server_id    uuid NOT NULL REFERENCES database_servers (id),
    -- `drifted` tenants are never touched; `skipped` ones left the fleet (deleted) meanwhile;
    -- `planned` is what a dry run records.
    status       text NOT NULL DEFAULT 'pending' CHECK (status IN
                     ('pending', 'running', 'succeeded', 'failed', 'drifted', 'skipped', 'planned')),
    -- The applied version found before the last attempt, and after it.
    from_version integer,
    to_version   integer,
    -- Dry run: the migrations a run would apply, [{"version": n, "name": "..."}].
    pending      jsonb NOT NULL DEFAULT '[]'::jsonb,
    attempts     integer NOT NULL DEFAULT 0,
    -- A failure: the database's error text. Drift: the reason the tenant was skipped.
    error        text,
    -- Where the last attempt's time went: connect_ms, lock_ms, flag_ms, ddl_ms, commit_ms.
    timings      jsonb,
    started_at   timestamptz,
    finished_at  timestamptz,
    duration_ms  double precision,
    PRIMARY KEY (run_id, tenant_id)
);
CREATE INDEX migration_run_tenants_status ON migration_run_tenants (run_id, status, position);
CREATE INDEX migration_run_tenants_position ON migration_run_tenants (run_id, position);
-- Crash recovery looks for tenants left `running` by a dead engine.
CREATE INDEX migration_run_tenants_running ON migration_run_tenants (run_id) WHERE status = 'running';

-- Every attempt of every migration on every database, template databases included.
CREATE TABLE migration_attempts (
    id            bigserial PRIMARY KEY,
    run_id        uuid NOT NULL REFERENCES migration_runs (id) ON DELETE CASCADE,
    -- NULL for a server's template database.
    tenant_id     uuid REFERENCES tenants (id),
    server_id     uuid NOT NULL REFERENCES database_servers (id),
    database_name text NOT NULL,
    -- The tenant's attempt number within the run (retries count up).
    attempt       integer NOT NULL,
    version       integer NOT NULL,
    name          text NOT NULL,
    -- `rolled_back`: applied, then undone because a later migration of the same transaction
    -- failed; `skipped`: not reached; `interrupted`: the control plane died mid-transaction.
    status        text NOT NULL CHECK (status IN
                      ('running', 'succeeded', 'failed', 'rolled_back', 'skipped', 'interrupted')),
    started_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz,
    duration_ms   double precision,
    error         text
);
CREATE INDEX migration_attempts_run ON migration_attempts (run_id, tenant_id, id);

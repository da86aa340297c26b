-- Scheduled backups with retention. A backup past the retention (`NEXACORE_BACKUP_KEEP`) has
-- its files deleted and its row kept as `expired` (its manifest stays: what it was, and when).
ALTER TABLE backups
    DROP CONSTRAINT backups_status_check,
    DROP CONSTRAINT backups_check,
    ADD CONSTRAINT backups_status_check CHECK (status IN ('running', 'done', 'failed', 'expired')),
    ADD CONSTRAINT backups_manifest_check CHECK ((status IN ('done', 'expired')) = (manifest IS NOT NULL)),
    ADD COLUMN expired_at timestamptz;
CREATE INDEX backups_scheduled_done ON backups (tenant_id, started_at DESC) WHERE kind = 'scheduled' AND status = 'done';

-- One row per scheduled run. A run holds a session advisory lock (see `backups::schedule`) for
-- its whole length, so one runs at a time across control-plane replicas; a `running` row whose
-- lock is free belongs to a process that died and is settled as `interrupted`. When the next
-- run is due is computed from the last `done` run, so an interrupted one is run again.
CREATE TABLE backup_runs (
    id          uuid PRIMARY KEY,
    state       text NOT NULL CHECK (state IN ('running', 'done', 'interrupted')),
    tenants     integer NOT NULL DEFAULT 0,
    done        integer NOT NULL DEFAULT 0,
    failed      integer NOT NULL DEFAULT 0,
    expired     integer NOT NULL DEFAULT 0,
    started_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz
);
CREATE INDEX backup_runs_started ON backup_runs (started_at DESC);

-- In-place restores keep the database they replaced (`NEXACORE_RESTORE_KEEP_OLD_HOURS`) until
-- `old_kept_until`, or until an operator drops it; `old_dropped_at` says it is gone. Restores
-- finished before this migration dropped theirs at once.
ALTER TABLE restores ADD COLUMN old_kept_until timestamptz, ADD COLUMN old_dropped_at timestamptz;
UPDATE restores SET old_dropped_at = coalesce(finished_at, now()) WHERE state = 'done';

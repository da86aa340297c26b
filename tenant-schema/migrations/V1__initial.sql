-- V1: the schema of one company's database.
--
-- Every company (tenant) has its own database, so no table carries a tenant id: isolation is
-- the database itself. The whole file runs in one transaction together with any later
-- migrations (refinery grouped mode), so it either applies completely or not at all.
--
-- Conventions:
--   * ids are uuid; the application generates them (uuid v7, time-ordered), the defaults are a
--     fallback for hand-written SQL. gen_random_uuid() is built in since PostgreSQL 13.
--   * timestamps are timestamptz; "updated_at" is maintained by triggers, not by callers.
--   * text columns have length/blank checks so no code path can store a 10 MB "first name".
--   * case-insensitive uniqueness uses unique indexes on lower(...) rather than citext or
--     pg_trgm: those are extensions, and tenant roles are not superusers.

------------------------------------------------------------------------------------------------
-- Shared trigger functions
------------------------------------------------------------------------------------------------

-- Keeps updated_at honest whatever the UPDATE statement says.
CREATE FUNCTION touch_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END
$$;

-- Optimistic concurrency: every UPDATE of a versioned row bumps "version" by exactly one, even
-- if the statement forgot to (or tried to set it to something else). Writers use
-- `UPDATE ... WHERE id = $1 AND version = $expected`; zero rows updated means they lost a race.
CREATE FUNCTION touch_versioned_row() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.version := OLD.version + 1;
    NEW.updated_at := now();
    RETURN NEW;
END
$$;

-- Whether PostgreSQL knows a time zone name (e.g. 'Europe/Berlin'); used by a CHECK so a bad
-- zone is a constraint violation instead of a failure later, when a report converts times.
-- STABLE, not IMMUTABLE: the zone database can change with a server upgrade.
CREATE FUNCTION is_valid_time_zone(zone text) RETURNS boolean
LANGUAGE plpgsql STABLE AS $$
BEGIN
    PERFORM now() AT TIME ZONE zone;
    RETURN true;
EXCEPTION WHEN invalid_parameter_value THEN
    RETURN false;
END
$$;

------------------------------------------------------------------------------------------------
-- company_settings: exactly one row, written when the company is provisioned (seed_company)
------------------------------------------------------------------------------------------------

CREATE TABLE company_settings (
    -- The single-row pattern: the primary key can only ever be true.
    id             boolean     PRIMARY KEY DEFAULT true,
    company_name   text        NOT NULL,
    timezone       text        NOT NULL,
    -- ISO 4217 alphabetic code (EUR, USD, ...).
    currency       text        NOT NULL,
    -- Code of the chart-of-accounts template the company started from (see seed.rs).
    chart_template text        NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),

    CONSTRAINT company_settings_single_row CHECK (id),
    CONSTRAINT company_settings_company_name_valid
        CHECK (btrim(company_name) <> '' AND length(company_name) <= 200),
    CONSTRAINT company_settings_timezone_valid
        CHECK (length(timezone) <= 64 AND is_valid_time_zone(timezone)),
    CONSTRAINT company_settings_currency_valid CHECK (currency ~ '^[A-Z]{3}$'),
    CONSTRAINT company_settings_chart_template_valid CHECK (chart_template ~ '^[a-z][a-z0-9_-]{0,31}$')
);

CREATE TRIGGER company_settings_touch BEFORE UPDATE ON company_settings
    FOR EACH ROW EXECUTE FUNCTION touch_updated_at();

------------------------------------------------------------------------------------------------
-- roles: what a member of this company may do. The default roles are inserted by V2 so they
-- are already present in the template database every company is copied from.
------------------------------------------------------------------------------------------------

CREATE TABLE roles (
    -- Stable code referenced by memberships in the catalog and by the JWT "role" claim.
    code        text        PRIMARY KEY,
    name        text        NOT NULL,
    description text        NOT NULL DEFAULT '',
    -- Permission strings such as 'employees.write'; '*' grants everything.
    permissions text[]      NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),

    CONSTRAINT roles_code_valid CHECK (code ~ '^[a-z][a-z0-9_]{0,31}$'),
    CONSTRAINT roles_name_valid CHECK (btrim(name) <> '' AND length(name) <= 100),
    CONSTRAINT roles_permissions_no_nulls CHECK (array_position(permissions, NULL) IS NULL)
);

CREATE TRIGGER roles_touch BEFORE UPDATE ON roles
    FOR EACH ROW EXECUTE FUNCTION touch_updated_at();

------------------------------------------------------------------------------------------------
-- departments
------------------------------------------------------------------------------------------------

CREATE TABLE departments (
    id         uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    name       text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),

    CONSTRAINT departments_name_valid CHECK (btrim(name) <> '' AND length(name) <= 100)
);

-- "Sales" and "sales" are the same department.
CREATE UNIQUE INDEX departments_name_key ON departments (lower(name));

CREATE TRIGGER departments_touch BEFORE UPDATE ON departments
    FOR EACH ROW EXECUTE FUNCTION touch_updated_at();

------------------------------------------------------------------------------------------------
-- employees
------------------------------------------------------------------------------------------------

CREATE TABLE employees (
    id            uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    first_name    text        NOT NULL,
    last_name     text        NOT NULL,
    email         text        NOT NULL,
    job_title     text,
    -- Deleting a department keeps its people, just without a department.
    department_id uuid        REFERENCES departments (id) ON DELETE SET NULL,
    hire_date     date        NOT NULL,
    status        text        NOT NULL DEFAULT 'active',
    -- Optimistic concurrency (see touch_versioned_row); starts at 1, +1 per UPDATE.
    version       bigint      NOT NULL DEFAULT 1,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),

    CONSTRAINT employees_first_name_valid CHECK (btrim(first_name) <> '' AND length(first_name) <= 100),
    CONSTRAINT employees_last_name_valid CHECK (btrim(last_name) <> '' AND length(last_name) <= 100),
    -- Full address validation belongs to the application; this only stops obvious garbage.
    CONSTRAINT employees_email_valid CHECK (length(email) <= 254 AND email ~ '^[^@\s]+@[^@\s]+$'),
    CONSTRAINT employees_job_title_valid CHECK (length(job_title) <= 200),
    CONSTRAINT employees_status_valid CHECK (status IN ('active', 'on_leave', 'terminated')),
    CONSTRAINT employees_version_positive CHECK (version >= 1)
);

-- One employee per address, ignoring case.
CREATE UNIQUE INDEX employees_email_key ON employees (lower(email));

-- Keyset pagination in list order: ORDER BY last_name, first_name, id with
-- WHERE (last_name, first_name, id) > ($1, $2, $3). (Pagination by id alone uses the primary key.)
CREATE INDEX employees_name_order_idx ON employees (last_name, first_name, id);

-- The same order within one department / one status, for filtered lists. The department index
-- also serves the foreign key (ON DELETE SET NULL looks employees up by department_id).
CREATE INDEX employees_department_order_idx ON employees (department_id, last_name, first_name, id);
CREATE INDEX employees_status_order_idx ON employees (status, last_name, first_name, id);

-- Search box ("q"): case-insensitive prefix match on first name, last name or email, e.g.
-- lower(last_name) LIKE lower($q) || '%'. text_pattern_ops makes LIKE 'prefix%' indexable
-- whatever the database collation is.
CREATE INDEX employees_last_name_search_idx ON employees (lower(last_name) text_pattern_ops);
CREATE INDEX employees_first_name_search_idx ON employees (lower(first_name) text_pattern_ops);
CREATE INDEX employees_email_search_idx ON employees (lower(email) text_pattern_ops);

CREATE TRIGGER employees_touch BEFORE UPDATE ON employees
    FOR EACH ROW EXECUTE FUNCTION touch_versioned_row();

------------------------------------------------------------------------------------------------
-- accounts: the chart of accounts (seeded from a template, see seed.rs)
------------------------------------------------------------------------------------------------

CREATE TABLE accounts (
    id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    -- Accountants refer to accounts by code ("1200"); it is the natural key.
    code        text        NOT NULL UNIQUE,
    name        text        NOT NULL,
    type        text        NOT NULL,
    -- Parent account for reporting roll-ups. Referencing the code keeps seed data simple; ON
    -- UPDATE CASCADE lets an accountant renumber a parent; a parent with children cannot be
    -- deleted.
    parent_code text        REFERENCES accounts (code) ON UPDATE CASCADE ON DELETE RESTRICT,
    created_at  timestamptz NOT NULL DEFAULT now(),

    CONSTRAINT accounts_code_valid CHECK (code ~ '^[0-9A-Za-z][0-9A-Za-z.-]{0,19}$'),
    CONSTRAINT accounts_name_valid CHECK (btrim(name) <> '' AND length(name) <= 200),
    CONSTRAINT accounts_type_valid CHECK (type IN ('asset', 'liability', 'equity', 'income', 'expense')),
    CONSTRAINT accounts_not_own_parent CHECK (parent_code <> code)
);

-- Children of an account (tree display, and the foreign key's ON DELETE/UPDATE checks).
CREATE INDEX accounts_parent_code_idx ON accounts (parent_code);

------------------------------------------------------------------------------------------------
-- outbox: change events for live updates
--
-- A write commits its event in the same transaction as the change. Readers (router replicas)
-- fetch `WHERE seq > $last_seen ORDER BY seq`, and clients reconnect with ?since=<seq>, so seq
-- must be gap-free and must appear in commit order:
--   * a sequence/bigserial would leave holes on rollback, and a reader could see seq 7 commit
--     before seq 6 and skip 6 forever;
--   * instead the writer takes the next number from the one-row counter outbox_seq with
--     `UPDATE outbox_seq SET last = last + 1 RETURNING last` inside its own transaction. The row
--     lock serialises writers of this company until commit, so numbers are handed out in commit
--     order, and a rollback undoes the increment: no hole.
-- Writers of one company therefore serialise on the event append; take it as the last step of
-- the transaction to keep the lock short. (See outbox.rs for the statement.)
------------------------------------------------------------------------------------------------

CREATE TABLE outbox_seq (
    id   boolean PRIMARY KEY DEFAULT true,
    last bigint  NOT NULL DEFAULT 0,

    CONSTRAINT outbox_seq_single_row CHECK (id),
    CONSTRAINT outbox_seq_last_non_negative CHECK (last >= 0)
);

INSERT INTO outbox_seq (id, last) VALUES (true, 0);

CREATE TABLE outbox (
    seq        bigint      PRIMARY KEY,
    -- What changed: channel 'employees', action 'created' | 'updated' | 'deleted', ...
    channel    text        NOT NULL,
    action     text        NOT NULL,
    -- The changed row's id; NULL for events not about one row.
    entity_id  uuid,
    -- The message data sent to clients (e.g. the employee as JSON).
    payload    jsonb       NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),

    CONSTRAINT outbox_seq_positive CHECK (seq > 0),
    CONSTRAINT outbox_channel_valid CHECK (channel ~ '^[a-z][a-z0-9_.]{0,63}$'),
    CONSTRAINT outbox_action_valid CHECK (action ~ '^[a-z][a-z0-9_.]{0,63}$')
);

-- Pruning old events (DELETE ... WHERE created_at < now() - interval '...').
CREATE INDEX outbox_created_at_idx ON outbox (created_at);

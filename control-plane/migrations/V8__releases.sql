-- Desktop releases: one row per (channel, platform, version), holding the manifest exactly as it
-- was signed (the app verifies those bytes), and the server-side switches that decide whom it is
-- offered to: state (active, paused, yanked) and the rollout percentage. The zip itself lives in
-- the release directory, named by its SHA-256.
CREATE TABLE releases (
    id              bigserial PRIMARY KEY,
    channel         text NOT NULL CHECK (channel IN ('stable', 'beta')),
    platform        text NOT NULL CHECK (platform IN ('linux-x86_64', 'windows-x86_64', 'macos-aarch64')),
    version         text NOT NULL,
    -- The version's parts, for ordering: text order would put 1.10.0 below 1.9.0.
    major           bigint NOT NULL,
    minor           bigint NOT NULL,
    patch           bigint NOT NULL,
    manifest        bytea NOT NULL,
    signature       text NOT NULL,
    key_id          text NOT NULL,
    sha256          text NOT NULL,
    size            bigint NOT NULL,
    mandatory       boolean NOT NULL,
    min_supported   text,
    rollout_percent smallint NOT NULL CHECK (rollout_percent BETWEEN 0 AND 100),
    state           text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'paused', 'yanked')),
    state_reason    text,
    published_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (channel, platform, major, minor, patch)
);

-- What installs report: one row per event, counted per release for operators.
CREATE TABLE release_events (
    id          bigserial PRIMARY KEY,
    release_id  bigint NOT NULL REFERENCES releases (id) ON DELETE CASCADE,
    kind        text NOT NULL CHECK (kind IN ('checked', 'downloaded', 'verified', 'applied', 'first_run_ok', 'rolled_back')),
    install_id  text NOT NULL,
    reason      text,
    at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX release_events_release ON release_events (release_id, kind);

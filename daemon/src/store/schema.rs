//! Forward-only migrations keyed by `PRAGMA user_version`.

use rusqlite::Connection;

use super::StoreError;

/// Each entry takes the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: users keyed by (issuer, sub), provider groups keyed by (issuer, provider_name),
    // memberships. A user's private group is not stored: it has the user's name and UID.
    "
    CREATE TABLE users (
        id             INTEGER PRIMARY KEY,
        issuer         TEXT NOT NULL,
        sub            TEXT NOT NULL,
        name           TEXT NOT NULL UNIQUE,
        uid            INTEGER NOT NULL UNIQUE,
        gid            INTEGER NOT NULL,
        gecos          TEXT NOT NULL,
        home           TEXT NOT NULL,
        shell          TEXT NOT NULL,
        email          TEXT,
        email_verified INTEGER NOT NULL DEFAULT 0,
        is_admin       INTEGER NOT NULL DEFAULT 0,
        claims         TEXT NOT NULL,
        source         TEXT NOT NULL,
        created_at     INTEGER NOT NULL,
        updated_at     INTEGER NOT NULL,
        last_login_at  INTEGER,
        UNIQUE (issuer, sub)
    );
    CREATE TABLE groups (
        id             INTEGER PRIMARY KEY,
        issuer         TEXT NOT NULL,
        provider_name  TEXT NOT NULL,
        name           TEXT NOT NULL UNIQUE,
        gid            INTEGER NOT NULL UNIQUE,
        created_at     INTEGER NOT NULL,
        updated_at     INTEGER NOT NULL,
        UNIQUE (issuer, provider_name)
    );
    CREATE TABLE memberships (
        user_id  INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        group_id INTEGER NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
        PRIMARY KEY (user_id, group_id)
    ) WITHOUT ROWID;
    CREATE INDEX memberships_by_group ON memberships(group_id, user_id);
    ",
    // 2: links from existing local accounts (served by /etc/passwd) to provider identities.
    "
    CREATE TABLE links (
        local_name     TEXT PRIMARY KEY,
        issuer         TEXT NOT NULL,
        sub            TEXT NOT NULL,
        created_at     INTEGER NOT NULL,
        last_login_at  INTEGER,
        UNIQUE (issuer, sub)
    );
    ",
    // 3: the identity lifecycle (issue 9). `tokens` holds what the provider gave at the last
    // login or refresh (secrets: never shown, never sent to a module); `lifecycle` what became
    // of the refreshes and whether the identity is revoked; `offline_pins` the Argon2id hash of
    // an offline PIN ([offline]) and the wrong tries since the last online login. All go with
    // their user.
    "
    CREATE TABLE tokens (
        user_id           INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
        refresh_token     TEXT,
        access_token      TEXT,
        access_expires_at INTEGER,
        updated_at        INTEGER NOT NULL
    );
    CREATE TABLE lifecycle (
        user_id         INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
        verified_at     INTEGER,
        last_refresh_at INTEGER,
        last_result     TEXT,
        next_refresh_at INTEGER,
        failures        INTEGER NOT NULL DEFAULT 0,
        revoked_at      INTEGER,
        revoked_reason  TEXT
    );
    CREATE TABLE offline_pins (
        user_id   INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
        hash      TEXT NOT NULL,
        set_at    INTEGER NOT NULL,
        failures     INTEGER NOT NULL DEFAULT 0,
        locked_until INTEGER
    );
    ",
    // 4: issuers whose identities moved to another (oidcctl migrate): the new provider's
    // groups take over the old groups of the same name (keeping their GIDs) and, with
    // by_email, the old users whose verified email a new identity shares.
    "
    CREATE TABLE issuer_moves (
        from_issuer    TEXT PRIMARY KEY,
        to_issuer      TEXT NOT NULL,
        by_email       INTEGER NOT NULL,
        created_at     INTEGER NOT NULL
    );
    ",
    // 5: every new UID and GID is checked against users.gid too (a user's private group);
    // without an index that check scanned the whole table, so an import of n users took
    // time in n squared (2,000 users into a store of 30,000: 10 s).
    "
    CREATE INDEX users_by_gid ON users(gid);
    ",
    // 6: the fleet's ID map as imported here (oidcctl import of a map): the ID each identity
    // is pinned to, whether or not it has a user or group here now. The allocator gives a
    // pinned identity its pin and skips IDs pinned to others (identity::ids); the pins outlive
    // `user remove` and `cache clear`, as the map they came from does.
    "
    CREATE TABLE id_pins (
        kind        TEXT NOT NULL CHECK (kind IN ('user', 'group')),
        issuer      TEXT NOT NULL,
        key         TEXT NOT NULL,
        name        TEXT NOT NULL,
        id          INTEGER NOT NULL UNIQUE,
        created_at  INTEGER NOT NULL,
        PRIMARY KEY (kind, issuer, key)
    );
    -- Every new ID is checked against users.gid too (a user's private group): without an
    -- index each check scans the table. The NSS work adds the same index; IF NOT EXISTS lets
    -- both migrations run.
    CREATE INDEX IF NOT EXISTS users_by_gid ON users(gid);
    ",
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// Brings the database up to [`SCHEMA_VERSION`], one transaction per step. A database newer
/// than this build is refused untouched.
pub fn migrate(conn: &mut Connection) -> Result<u32, StoreError> {
    let found: u32 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::TooNew {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i as u32 + 1)?;
        tx.commit()?;
        log::info!("database schema migrated to version {}", i + 1);
    }
    Ok(SCHEMA_VERSION)
}

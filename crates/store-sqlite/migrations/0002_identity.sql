-- Users, groups and the audit trail. Roles (admin, supervisor, agent, contractor) are ordinary
-- groups, created here so that policies can name them from the first start.
CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE COLLATE NOCASE,
    password_hash TEXT NOT NULL,
    disabled      INTEGER NOT NULL DEFAULT 0,
    must_change_password INTEGER NOT NULL DEFAULT 0,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);

CREATE TABLE groups (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE COLLATE NOCASE,
    description TEXT NOT NULL DEFAULT '',
    created_at  TEXT NOT NULL
);

CREATE TABLE memberships (
    user_id  INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    group_id INTEGER NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, group_id)
);

-- Who did what, when, from where, and which rule decided. Append-only.
CREATE TABLE audit_events (
    id      INTEGER PRIMARY KEY,
    at      TEXT NOT NULL,
    kind    TEXT NOT NULL,
    actor   TEXT,
    source  TEXT,
    subject TEXT,
    outcome TEXT NOT NULL,
    rule    TEXT,
    detail  TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_events_at ON audit_events (at);

INSERT INTO groups (name, description, created_at) VALUES
    ('admin', 'Administrators', strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    ('supervisor', 'Contact-center supervisors', strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    ('agent', 'Contact-center operators', strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    ('contractor', 'Outside contractors', strftime('%Y-%m-%dT%H:%M:%SZ', 'now'));

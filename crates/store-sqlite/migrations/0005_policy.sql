-- Access-policy rules edited in the admin pages, kept as the same TOML an administrator would
-- write under [policy] in the config file. One row; the config's rules come first.
CREATE TABLE stored_policy (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    toml       TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    updated_by TEXT NOT NULL
);

-- What this installation is: one row, written on first start.
CREATE TABLE installation (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    created_at   TEXT NOT NULL,
    genkan_version TEXT NOT NULL
);

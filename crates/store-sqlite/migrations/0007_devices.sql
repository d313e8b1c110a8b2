-- Endpoint posture: enrolled devices, the one-time codes that enrol them, every report they
-- send, the detections they listed and the alerts those caused. Times are RFC 3339 UTC text
-- in one format (milliseconds, `Z`), so they compare as text.

-- A one-time enrolment code, kept only as its SHA-256: whoever reads the database cannot enrol.
CREATE TABLE enrolment_codes (
    code_hash  TEXT PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at    TEXT,
    device_id  TEXT
);

-- A device genkan issued a client certificate to. The certificate is known by the SHA-256 of
-- its DER form: the TLS handshake has already checked the signature, this finds the row.
CREATE TABLE devices (
    id                 TEXT PRIMARY KEY,
    owner_id           INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    certificate_sha256 TEXT NOT NULL UNIQUE,
    certificate_not_after TEXT NOT NULL,
    hostname           TEXT NOT NULL,
    os_family          TEXT NOT NULL,
    os_name            TEXT NOT NULL,
    os_version         TEXT NOT NULL,
    enrolled_at        TEXT NOT NULL,
    revoked_at         TEXT,
    revoked_by         TEXT,
    -- The latest report's verdict: NULL before the first report.
    last_seen_at       TEXT,
    last_collected_at  TEXT,
    compliant          INTEGER,
    failures           TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(failures))
);
CREATE INDEX devices_by_owner ON devices (owner_id);

-- Every report as received; a second report with the same (device, collected_at) is the agent
-- resending one whose answer it did not see.
CREATE TABLE device_reports (
    id           INTEGER PRIMARY KEY,
    device_id    TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    collected_at TEXT NOT NULL,
    received_at  TEXT NOT NULL,
    compliant    INTEGER NOT NULL,
    failures     TEXT NOT NULL CHECK (json_valid(failures)),
    report       TEXT NOT NULL CHECK (json_valid(report)),
    UNIQUE (device_id, collected_at)
);
CREATE INDEX device_reports_by_time ON device_reports (received_at);

-- Detections a device listed, once each: the first sighting is what raises an alert.
CREATE TABLE device_detections (
    device_id     TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    detection_id  TEXT NOT NULL,
    first_seen_at TEXT NOT NULL,
    detected_at   TEXT NOT NULL,
    threat        TEXT NOT NULL,
    path          TEXT,
    action        TEXT NOT NULL,
    PRIMARY KEY (device_id, detection_id)
);

-- Alerts, once per `dedupe_key`, and their delivery by e-mail and webhook.
CREATE TABLE alerts (
    id              INTEGER PRIMARY KEY,
    dedupe_key      TEXT NOT NULL UNIQUE,
    kind            TEXT NOT NULL,
    device_id       TEXT,
    created_at      TEXT NOT NULL,
    subject         TEXT NOT NULL,
    body            TEXT NOT NULL,
    payload         TEXT NOT NULL CHECK (json_valid(payload)),
    email_pending   INTEGER NOT NULL,
    webhook_pending INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL
);
CREATE INDEX alerts_due ON alerts (next_attempt_at) WHERE email_pending OR webhook_pending;

CREATE TABLE alert_attempts (
    id       INTEGER PRIMARY KEY,
    alert_id INTEGER NOT NULL REFERENCES alerts(id) ON DELETE CASCADE,
    channel  TEXT NOT NULL CHECK (channel IN ('email', 'webhook')),
    at       TEXT NOT NULL,
    outcome  TEXT NOT NULL CHECK (outcome IN ('sent', 'failed')),
    error    TEXT NOT NULL DEFAULT ''
);

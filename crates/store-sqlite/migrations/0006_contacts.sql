-- Contact records: one row per call or chat, written when it ends (notes and the transcript
-- may follow). Times are RFC 3339 UTC. The customer is a record of a records database,
-- named by database, table and recordId, so history follows the customer, not the number.
CREATE TABLE contacts (
    id INTEGER PRIMARY KEY,
    channel TEXT NOT NULL CHECK (channel IN ('voice', 'chat')),
    customer_address TEXT NOT NULL,
    customer_database TEXT,
    customer_table TEXT,
    customer_record_id INTEGER,
    customer_name TEXT NOT NULL DEFAULT '',
    queue TEXT,
    agent TEXT,
    initiated_at TEXT NOT NULL,
    queued_at TEXT,
    connected_at TEXT,
    ended_at TEXT NOT NULL,
    outcome TEXT NOT NULL,
    attributes TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(attributes)),
    notes TEXT NOT NULL DEFAULT '',
    transcript TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(transcript)),
    recording TEXT
);
CREATE INDEX contacts_by_customer ON contacts (customer_database, customer_table, customer_record_id, initiated_at);
CREATE INDEX contacts_by_time ON contacts (initiated_at);
CREATE INDEX contacts_by_agent ON contacts (agent, initiated_at);

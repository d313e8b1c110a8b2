-- The demo database's first tables and rows, run once when genkan creates the file.
-- genkan adds the system columns (recordId = ROWID, modId = ROWMODID) itself.
CREATE TABLE customers (
    name TEXT NOT NULL DEFAULT '',
    phone TEXT NOT NULL DEFAULT '',
    email TEXT NOT NULL DEFAULT '',
    assigned_agent TEXT NOT NULL DEFAULT '',
    note TEXT NOT NULL DEFAULT ''
);
CREATE INDEX customers_phone ON customers (phone);
CREATE TABLE contacts (
    customer_id INTEGER NOT NULL,
    channel TEXT NOT NULL DEFAULT 'voice',
    topic TEXT NOT NULL DEFAULT '',
    at TEXT NOT NULL DEFAULT ''
);
CREATE INDEX contacts_customer ON contacts (customer_id);
INSERT INTO customers (name, phone, email, assigned_agent, note) VALUES
    ('佐藤 花子', '+81312345678', 'hanako.sato@example.jp', 'tanaka', '請求書は郵送希望'),
    ('鈴木 一郎', '+81661234567', 'ichiro.suzuki@example.jp', 'yamada', ''),
    ('高橋 次郎', '+81312349999', 'jiro.takahashi@example.jp', '', '折り返し電話希望'),
    ('Sato Kenji', '+81112345678', 'kenji.sato@example.com', 'tanaka', 'English please');
INSERT INTO contacts (customer_id, channel, topic, at) VALUES
    (1, 'voice', '請求について', '2026-11-02T10:15:00+09:00'),
    (1, 'chat', '配送日の変更', '2026-11-20T14:02:00+09:00'),
    (2, 'voice', '解約の相談', '2026-11-25T09:40:00+09:00');

-- The contact-center demo's customers: each with the agent who looks after them.
CREATE TABLE customers (
    name TEXT NOT NULL DEFAULT '',
    phone TEXT NOT NULL DEFAULT '',
    email TEXT NOT NULL DEFAULT '',
    assigned_agent TEXT NOT NULL DEFAULT '',
    note TEXT NOT NULL DEFAULT ''
);
INSERT INTO customers (name, phone, email, assigned_agent, note) VALUES
    ('佐藤 花子', '03-1234-5678', 'hanako.sato@example.jp', 'agent1', '請求書は郵送希望'),
    ('鈴木 一郎', '06-6123-4567', 'ichiro.suzuki@example.jp', 'agent2', ''),
    ('高橋 次郎', '090-1234-9999', 'jiro.takahashi@example.jp', '', '折り返し電話希望');

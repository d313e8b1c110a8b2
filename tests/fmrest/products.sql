-- The test-only `shop` database: number fields for range finds and numeric sorts.
-- Each test adds its own rows under a category nobody else uses; these rows are background.
CREATE TABLE products (
    name TEXT NOT NULL DEFAULT '',
    category TEXT NOT NULL DEFAULT '',
    price INTEGER NOT NULL DEFAULT 0,
    weight REAL NOT NULL DEFAULT 0
);
INSERT INTO products (name, category, price, weight) VALUES
    ('お茶', 'seed', 150, 0.5),
    ('Coffee', 'seed', 480, 0.25),
    ('Water', 'seed', 100, 2.0);

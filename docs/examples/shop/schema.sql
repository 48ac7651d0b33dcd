-- A small shop's database, to follow docs/own-database.md without your own:
-- customers with their orders, and two people in it.
CREATE TABLE customers (
    id         serial PRIMARY KEY,
    email      text NOT NULL UNIQUE,
    full_name  text,
    phone      text,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE orders (
    id               serial PRIMARY KEY,
    customer_id      int NOT NULL REFERENCES customers (id),
    total_cents      int NOT NULL,
    shipping_address text,
    created_at       timestamptz NOT NULL DEFAULT now()
);
INSERT INTO customers (email, full_name, phone) VALUES
    ('ann@example.com', 'Ann Lee', '+49 30 1234567'),
    ('bob@example.com', 'Bob Stone', '+49 40 7654321');
INSERT INTO orders (customer_id, total_cents, shipping_address) VALUES
    (1, 1999, 'Hauptstr. 1, 10115 Berlin'),
    (1, 500, 'Hauptstr. 1, 10115 Berlin'),
    (2, 4200, 'Ring 5, 20095 Hamburg');

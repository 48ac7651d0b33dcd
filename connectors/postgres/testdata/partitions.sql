-- A schema for the partition, inheritance and quoted-name tests
-- (partition_test.go, scan_test.go); see TestPartitionsEndToEnd.
CREATE TABLE customers (id bigint PRIMARY KEY, email text NOT NULL UNIQUE, name text);
CREATE INDEX ON customers (lower(email));
CREATE TABLE payments (
    id bigint NOT NULL,
    customer_id bigint NOT NULL,
    amount integer NOT NULL,
    paid_on date NOT NULL,
    note text,
    PRIMARY KEY (id, paid_on)
) PARTITION BY RANGE (paid_on);
CREATE TABLE payments_2023 PARTITION OF payments FOR VALUES FROM ('2023-01-01') TO ('2024-01-01');
CREATE TABLE payments_2024 PARTITION OF payments FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
ALTER TABLE payments_2023 ADD CONSTRAINT payments_2023_customer_fkey FOREIGN KEY (customer_id) REFERENCES customers (id);
ALTER TABLE payments_2024 ADD CONSTRAINT payments_2024_customer_fkey FOREIGN KEY (customer_id) REFERENCES customers (id);
CREATE INDEX ON payments (customer_id);

CREATE TABLE events (id bigint PRIMARY KEY, customer_id bigint NOT NULL, what text);
CREATE TABLE events_2023 () INHERITS (events);
CREATE TABLE events_2024 (extra text) INHERITS (events);
ALTER TABLE events_2023 ADD FOREIGN KEY (customer_id) REFERENCES customers (id);
ALTER TABLE events_2024 ADD FOREIGN KEY (customer_id) REFERENCES customers (id);

CREATE TABLE "CustomerNotes" (
    "noteId" bigint PRIMARY KEY,
    "customerId" bigint NOT NULL REFERENCES customers (id),
    "noteText" text,
    "createdAt" timestamptz NOT NULL DEFAULT now());

CREATE TABLE audit (id bigint NOT NULL, customer_id bigint, kind text NOT NULL) PARTITION BY LIST (kind);
CREATE TABLE audit_login PARTITION OF audit FOR VALUES IN ('login');
CREATE TABLE audit_other PARTITION OF audit DEFAULT;
ALTER TABLE audit_login ADD FOREIGN KEY (customer_id) REFERENCES customers (id);

CREATE VIEW customer_totals AS SELECT customer_id, sum(amount) AS total FROM payments GROUP BY customer_id;
CREATE MATERIALIZED VIEW "MonthlyTotals" AS SELECT date_trunc('month', paid_on) AS month, sum(amount) AS total FROM payments GROUP BY 1;

INSERT INTO customers VALUES (1, 'Ann@Example.com', 'Ann'), (2, 'bob@example.com', 'Bob'), (3, 'cat@example.com', 'Cat');
INSERT INTO payments VALUES
    (1, 1, 100, '2023-03-01', 'ann 2023'), (2, 2, 200, '2023-04-01', 'bob 2023'), (3, 3, 300, '2023-05-01', 'cat 2023'),
    (4, 2, 400, '2024-03-01', 'bob 2024'), (5, 3, 500, '2024-04-01', 'cat 2024'), (6, 1, 600, '2024-05-01', 'ann 2024');
INSERT INTO events_2023 VALUES (1, 1, 'ann signed up'), (2, 2, 'bob signed up');
INSERT INTO events_2024 VALUES (3, 2, 'bob paid', 'x'), (4, 1, 'ann paid', 'y');
INSERT INTO "CustomerNotes" ("noteId", "customerId", "noteText") VALUES (1, 1, 'likes tea'), (2, 2, 'likes coffee');
INSERT INTO audit VALUES (1, 1, 'login'), (2, 1, 'other'), (3, 3, 'login');

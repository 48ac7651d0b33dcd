-- A DVD-rental shop shaped after Pagila: addresses shared by customers,
-- staff and stores; rentals; payments partitioned by date whose foreign
-- keys (to customer, rental and staff) are declared on each partition.
-- Hazards: citext staff emails, mixed-case customer emails, an enum, CHECK
-- constraints, a composite primary key (payment_date, payment_id) under
-- which payment ids repeat across partitions, a BEFORE UPDATE trigger
-- stamping last_update, a household address two customers share, a
-- payment by one customer for another customer's rental.
CREATE EXTENSION IF NOT EXISTS citext;
CREATE TYPE mpaa_rating AS ENUM ('G', 'PG', 'PG-13', 'R');

CREATE TABLE address (
  address_id int PRIMARY KEY,
  address text NOT NULL,
  district text NOT NULL,
  postal_code text,
  phone text NOT NULL CHECK (phone <> ''),
  last_update timestamptz NOT NULL DEFAULT '2024-01-01 00:00+00'
);
CREATE TABLE staff (
  staff_id int PRIMARY KEY,
  first_name text NOT NULL,
  last_name text NOT NULL,
  email citext,
  address_id int NOT NULL REFERENCES address,
  active boolean NOT NULL DEFAULT true
);
CREATE TABLE store (
  store_id int PRIMARY KEY,
  manager_staff_id int NOT NULL REFERENCES staff,
  address_id int NOT NULL REFERENCES address
);
CREATE TABLE film (
  film_id int PRIMARY KEY,
  title text NOT NULL,
  rating mpaa_rating NOT NULL DEFAULT 'G'
);
CREATE TABLE inventory (
  inventory_id int PRIMARY KEY,
  film_id int NOT NULL REFERENCES film,
  store_id int NOT NULL REFERENCES store
);
CREATE TABLE customer (
  customer_id int PRIMARY KEY,
  store_id int NOT NULL REFERENCES store,
  first_name text NOT NULL,
  last_name text NOT NULL,
  email text CHECK (email LIKE '%@%'),
  address_id int REFERENCES address,
  activebool boolean NOT NULL DEFAULT true,
  create_date date NOT NULL DEFAULT '2024-01-01',
  last_update timestamptz NOT NULL DEFAULT '2024-01-01 00:00+00'
);
CREATE INDEX customer_lower_email_idx ON customer (lower(email));
CREATE TABLE rental (
  rental_id int PRIMARY KEY,
  rental_date timestamptz NOT NULL,
  inventory_id int NOT NULL REFERENCES inventory,
  customer_id int NOT NULL REFERENCES customer,
  return_date timestamptz,
  staff_id int NOT NULL REFERENCES staff,
  last_update timestamptz NOT NULL DEFAULT '2024-01-01 00:00+00',
  CHECK (return_date IS NULL OR return_date >= rental_date)
);
CREATE TABLE payment (
  payment_id int NOT NULL,
  customer_id int NOT NULL,
  staff_id int NOT NULL,
  rental_id int,
  amount numeric(5,2) NOT NULL CHECK (amount >= 0),
  payment_date date NOT NULL,
  PRIMARY KEY (payment_date, payment_id)
) PARTITION BY RANGE (payment_date);
CREATE TABLE payment_2023 PARTITION OF payment FOR VALUES FROM ('2023-01-01') TO ('2024-01-01');
CREATE TABLE payment_2024 PARTITION OF payment FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
ALTER TABLE payment_2023 ADD FOREIGN KEY (customer_id) REFERENCES customer, ADD FOREIGN KEY (rental_id) REFERENCES rental,
  ADD FOREIGN KEY (staff_id) REFERENCES staff;
ALTER TABLE payment_2024 ADD FOREIGN KEY (customer_id) REFERENCES customer, ADD FOREIGN KEY (rental_id) REFERENCES rental,
  ADD FOREIGN KEY (staff_id) REFERENCES staff;

CREATE FUNCTION last_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.last_update = now();
  RETURN NEW;
END $$;
CREATE TRIGGER last_updated BEFORE UPDATE ON customer FOR EACH ROW EXECUTE FUNCTION last_updated();
CREATE TRIGGER last_updated BEFORE UPDATE ON rental FOR EACH ROW EXECUTE FUNCTION last_updated();
CREATE TRIGGER last_updated BEFORE UPDATE ON address FOR EACH ROW EXECUTE FUNCTION last_updated();

-- People: Ann (customer 1) and Bob (customer 2) share the household
-- address 10; Cat (customer 3) lives alone at 11; Sam (staff 1) and Tom
-- (staff 2) work at store 1, whose address is 21.
INSERT INTO address VALUES
  (10, '1 Elm Street', 'North', '1000', '+44 20 0000 0010', '2024-01-01 00:00+00'),
  (11, '2 Oak Street', 'North', '1001', '+44 20 0000 0011', '2024-01-01 00:00+00'),
  (20, '3 Pine Street', 'South', NULL, '+44 20 0000 0020', '2024-01-01 00:00+00'),
  (21, '4 High Street', 'South', '2000', '+44 20 0000 0021', '2024-01-01 00:00+00');
INSERT INTO staff VALUES
  (1, 'Sam', 'Stone', 'Sam.Stone@Shop.example', 20, true),
  (2, 'Tom', 'Tate', 'tom@shop.example', 21, true);
INSERT INTO store VALUES (1, 1, 21);
INSERT INTO film VALUES (1, 'Academy Dinosaur', 'PG'), (2, 'Ace Goldfinger', 'R');
INSERT INTO inventory VALUES (1, 1, 1), (2, 2, 1), (3, 1, 1);
INSERT INTO customer VALUES
  (1, 1, 'Ann', 'Archer', 'Ann.Archer@Example.COM', 10, true, '2023-01-02', '2024-01-01 00:00+00'),
  (2, 1, 'Bob', 'Archer', 'bob@example.com', 10, true, '2023-01-03', '2024-01-01 00:00+00'),
  (3, 1, 'Cat', 'Cole', 'CAT@EXAMPLE.COM', 11, true, '2023-02-01', '2024-01-01 00:00+00');
INSERT INTO rental VALUES
  (1, '2023-03-01 10:00+00', 1, 1, '2023-03-04 10:00+00', 1, '2024-01-01 00:00+00'),
  (2, '2024-05-01 10:00+00', 2, 1, NULL, 2, '2024-01-01 00:00+00'),
  (3, '2023-03-02 10:00+00', 3, 2, '2023-03-05 10:00+00', 1, '2024-01-01 00:00+00'),
  (4, '2024-05-02 10:00+00', 1, 3, NULL, 2, '2024-01-01 00:00+00');
-- Payment ids repeat across partitions: Ann's (2023, 1) and Bob's (2024, 1).
-- Payment 2 of 2024 is Ann's money for Bob's rental 3: not Ann's alone.
INSERT INTO payment VALUES
  (1, 1, 1, 1, 2.99, '2023-03-01'),
  (2, 2, 1, 3, 0.99, '2023-03-02'),
  (1, 2, 2, NULL, 4.99, '2024-05-01'),
  (2, 1, 2, 3, 1.99, '2024-05-01'),
  (3, 1, 2, 2, 3.99, '2024-05-01'),
  (4, 3, 2, 4, 5.99, '2024-05-02');

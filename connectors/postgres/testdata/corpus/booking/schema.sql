-- A hotel/rental booking system shaped after QloApps and Cal.com-like
-- schedulers: guests (every account; a host is a guest too), hosts (a
-- guest's host profile), properties a host owns, rooms (no personal data),
-- bookings a guest makes for a room, booking_guests (everyone staying on a
-- booking, the booker included), reviews by a guest about a property with
-- the host's reply, and payments partitioned by year whose foreign keys
-- are declared on each partition.
-- Hazards: mixed-case emails, a date of birth, an enum, CHECK constraints
-- (check_out > check_in, rating 1..5), jsonb special requests, a composite
-- primary key (booking_id, guest_id), a composite primary key
-- (paid_on, payment_id) under which payment ids repeat across partitions,
-- BEFORE UPDATE triggers stamping updated_at, a booking two guests share
-- (both ways), a host who is also a guest, a host's reply on a review.
-- guests.email is NOT NULL with a CHECK (LIKE '%@%'): a guest row kept for
-- the payments that reference it gets an email-shaped keyed hash
-- (kh.<hex>@erased.invalid), which PostgreSQL said passes the CHECK.
CREATE TYPE booking_status AS ENUM ('pending', 'confirmed', 'cancelled', 'completed');

CREATE TABLE guests (
  id int PRIMARY KEY,
  email text NOT NULL CHECK (email LIKE '%@%'),
  full_name text NOT NULL,
  phone text,
  date_of_birth date,
  nationality char(2),
  created_at timestamptz NOT NULL DEFAULT '2024-01-01 00:00+00',
  updated_at timestamptz NOT NULL DEFAULT '2024-01-01 00:00+00'
);
CREATE UNIQUE INDEX guests_lower_email_idx ON guests (lower(email));
CREATE TABLE hosts (
  id int PRIMARY KEY,
  guest_id int NOT NULL UNIQUE REFERENCES guests,
  display_name text NOT NULL,
  payout_iban text,
  created_at timestamptz NOT NULL DEFAULT '2024-01-01 00:00+00'
);
CREATE TABLE properties (
  id int PRIMARY KEY,
  host_id int NOT NULL REFERENCES hosts,
  name text NOT NULL,
  city text NOT NULL
);
CREATE TABLE rooms (
  id int PRIMARY KEY,
  property_id int NOT NULL REFERENCES properties,
  name text NOT NULL,
  capacity int NOT NULL CHECK (capacity > 0),
  nightly_rate numeric(8,2) NOT NULL CHECK (nightly_rate >= 0)
);
CREATE TABLE bookings (
  id int PRIMARY KEY,
  guest_id int NOT NULL REFERENCES guests,
  room_id int NOT NULL REFERENCES rooms,
  check_in date NOT NULL,
  check_out date NOT NULL,
  status booking_status NOT NULL DEFAULT 'pending',
  special_requests jsonb NOT NULL DEFAULT '{}',
  created_at timestamptz NOT NULL DEFAULT '2024-01-01 00:00+00',
  updated_at timestamptz NOT NULL DEFAULT '2024-01-01 00:00+00',
  CHECK (check_out > check_in)
);
CREATE TABLE booking_guests (
  booking_id int NOT NULL REFERENCES bookings,
  guest_id int NOT NULL REFERENCES guests,
  is_primary boolean NOT NULL DEFAULT false,
  added_at timestamptz NOT NULL DEFAULT '2024-01-01 00:00+00',
  PRIMARY KEY (booking_id, guest_id)
);
CREATE TABLE reviews (
  id int PRIMARY KEY,
  guest_id int NOT NULL REFERENCES guests,
  property_id int NOT NULL REFERENCES properties,
  rating int NOT NULL CHECK (rating BETWEEN 1 AND 5),
  body text,
  host_reply text,
  replied_by_host_id int REFERENCES hosts,
  created_at timestamptz NOT NULL DEFAULT '2024-01-01 00:00+00',
  updated_at timestamptz NOT NULL DEFAULT '2024-01-01 00:00+00'
);
CREATE TABLE payments (
  payment_id int NOT NULL,
  booking_id int NOT NULL,
  guest_id int NOT NULL,
  amount numeric(10,2) NOT NULL CHECK (amount >= 0),
  card_last4 char(4),
  paid_on date NOT NULL,
  PRIMARY KEY (paid_on, payment_id)
) PARTITION BY RANGE (paid_on);
CREATE TABLE payments_2023 PARTITION OF payments FOR VALUES FROM ('2023-01-01') TO ('2024-01-01');
CREATE TABLE payments_2024 PARTITION OF payments FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
ALTER TABLE payments_2023 ADD FOREIGN KEY (booking_id) REFERENCES bookings, ADD FOREIGN KEY (guest_id) REFERENCES guests;
ALTER TABLE payments_2024 ADD FOREIGN KEY (booking_id) REFERENCES bookings, ADD FOREIGN KEY (guest_id) REFERENCES guests;

CREATE FUNCTION stamp_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.updated_at := now();
  RETURN NEW;
END $$;
CREATE TRIGGER stamp_updated_at BEFORE UPDATE ON guests FOR EACH ROW EXECUTE FUNCTION stamp_updated_at();
CREATE TRIGGER stamp_updated_at BEFORE UPDATE ON bookings FOR EACH ROW EXECUTE FUNCTION stamp_updated_at();
CREATE TRIGGER stamp_updated_at BEFORE UPDATE ON reviews FOR EACH ROW EXECUTE FUNCTION stamp_updated_at();

-- People: Ann (guest 1) and Bob (guest 2) travel together; Hal (guest 3)
-- hosts (host 1) and owns property 1; Cat (guest 4) travels alone.
INSERT INTO guests VALUES
  (1, 'Ann.Archer@Example.COM', 'Ann Archer', '+44 20 0000 0001', '1990-04-01', 'GB', '2023-01-02 00:00+00', '2024-01-01 00:00+00'),
  (2, 'bob@example.com', 'Bob Baker', '+44 20 0000 0002', '1988-07-12', 'GB', '2023-01-03 00:00+00', '2024-01-01 00:00+00'),
  (3, 'Hal.Host@Example.org', 'Hal Host', '+33 1 00 00 00 03', '1975-11-30', 'FR', '2022-06-01 00:00+00', '2024-01-01 00:00+00'),
  (4, 'CAT@EXAMPLE.COM', 'Cat Cole', NULL, NULL, 'DE', '2023-05-01 00:00+00', '2024-01-01 00:00+00');
INSERT INTO hosts VALUES (1, 3, 'Hal''s Place', 'FR7630006000011234567890189', '2022-06-02 00:00+00');
INSERT INTO properties VALUES (1, 1, 'Seaside Villa', 'Nice'), (2, 1, 'City Loft', 'Paris');
INSERT INTO rooms VALUES (1, 1, 'Blue Room', 2, 120.00), (2, 1, 'Garden Suite', 4, 200.00), (3, 2, 'Loft', 2, 150.00);
-- Booking 1 is Ann's, Bob staying with her; booking 2 is Bob's, Ann
-- staying with him; booking 3 is Ann's alone; booking 4 is Cat's.
INSERT INTO bookings VALUES
  (1, 1, 1, '2023-08-01', '2023-08-05', 'completed', '{"late_checkin": true, "note": "Ann has a nut allergy"}', '2023-06-01 00:00+00', '2024-01-01 00:00+00'),
  (2, 2, 2, '2024-03-10', '2024-03-12', 'confirmed', '{"crib": false, "note": "Bob needs a ground floor"}', '2024-01-05 00:00+00', '2024-01-01 00:00+00'),
  (3, 1, 3, '2024-09-01', '2024-09-03', 'cancelled', '{}', '2024-07-01 00:00+00', '2024-01-01 00:00+00'),
  (4, 4, 3, '2024-05-01', '2024-05-04', 'completed', '{"parking": true}', '2024-02-01 00:00+00', '2024-01-01 00:00+00');
INSERT INTO booking_guests VALUES
  (1, 1, true, '2023-06-01 00:00+00'),
  (1, 2, false, '2023-06-02 00:00+00'),
  (2, 2, true, '2024-01-05 00:00+00'),
  (2, 1, false, '2024-01-06 00:00+00'),
  (3, 1, true, '2024-07-01 00:00+00'),
  (4, 4, true, '2024-02-01 00:00+00');
-- Review 1 is Ann's, Hal replied; review 2 is Bob's of the same stay;
-- review 3 is Cat's.
INSERT INTO reviews VALUES
  (1, 1, 1, 5, 'Lovely stay, Bob and I loved it', 'Thank you Ann!', 1, '2023-08-06 00:00+00', '2024-01-01 00:00+00'),
  (2, 2, 1, 4, 'Nice, a bit noisy', NULL, NULL, '2023-08-07 00:00+00', '2024-01-01 00:00+00'),
  (3, 4, 2, 3, 'OK', 'Sorry about the noise, Cat', 1, '2024-05-05 00:00+00', '2024-01-01 00:00+00');
-- Payment ids repeat across partitions: Ann's (2023, 1) and Bob's (2024, 1).
-- Payment (2024, 2) is Ann's money toward Bob's booking 2: not hers alone.
INSERT INTO payments VALUES
  (1, 1, 1, 480.00, '4242', '2023-06-01'),
  (2, 1, 2, 0.00, NULL, '2023-06-02'),
  (1, 2, 2, 200.00, '1111', '2024-01-05'),
  (2, 2, 1, 200.00, '4242', '2024-01-06'),
  (3, 3, 1, 150.00, '4242', '2024-07-01'),
  (4, 4, 4, 450.00, '5555', '2024-02-01');

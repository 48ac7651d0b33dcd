-- Person A: Ann Archer, guest 1, who signed up as Ann.Archer@Example.COM
-- and asks with the lower-cased address. Bob (guest 2) stays on her
-- booking 1; she stays on his booking 2.
-- person: email ann.archer@example.com
-- second: email bob@example.com

-- dataset: guests
SELECT id::text FROM guests WHERE id = 1;

-- dataset: bookings
-- The bookings she made, 1 and 3; Bob's booking 2, on which she stayed, is
-- Bob's (a booking is its booker's).
SELECT id::text FROM bookings WHERE guest_id = 1;

-- dataset: booking_guests
-- Her own rows as a guest, on her bookings 1 and 3 and on Bob's booking 2;
-- Bob's row on her booking 1 is Bob's.
SELECT booking_id::text || '/' || guest_id::text FROM booking_guests WHERE guest_id = 1;

-- dataset: reviews
-- Her review 1, Hal's reply on it included; Bob's review 2 of the same stay
-- is Bob's.
SELECT id::text FROM reviews WHERE guest_id = 1;

-- dataset: payments
-- Her payments for her own bookings: (2023-06-01, 1) and (2024-07-01, 3).
-- (2024-01-06, 2) is her money toward Bob's booking 2: not hers alone;
-- (2023-06-02, 2) is Bob's toward her booking 1: not hers alone either.
-- Payment id 1 of 2024 is Bob's.
SELECT paid_on::text || '/' || payment_id::text FROM payments
WHERE guest_id = 1 AND booking_id IN (1, 3);

-- dataset: hosts
-- She is no host.
SELECT id::text FROM hosts WHERE false;

-- dataset: properties
-- Hal's, whose rooms she booked and which she reviewed.
SELECT id::text FROM properties WHERE false;

-- dataset: rooms
-- A lookup, never one person's.
SELECT id::text FROM rooms WHERE false;

-- Person B: Bob Baker, guest 2 (bob@example.com).

-- second-dataset: guests
SELECT id::text FROM guests WHERE id = 2;

-- second-dataset: bookings
-- The booking he made, 2; Ann's booking 1, on which he stayed, is Ann's.
SELECT id::text FROM bookings WHERE guest_id = 2;

-- second-dataset: booking_guests
-- His own rows as a guest: on Ann's booking 1 and on his booking 2.
SELECT booking_id::text || '/' || guest_id::text FROM booking_guests WHERE guest_id = 2;

-- second-dataset: reviews
SELECT id::text FROM reviews WHERE guest_id = 2;

-- second-dataset: payments
-- A payment is the payer's when it is for the payer's own booking: his
-- (2024-01-05, 1) for booking 2. (2023-06-02, 2), his money toward Ann's
-- booking 1, is not his alone.
SELECT p.paid_on::text || '/' || p.payment_id::text
FROM payments AS p JOIN bookings AS b ON b.id = p.booking_id
WHERE p.guest_id = 2 AND b.guest_id = 2;

-- second-dataset: hosts
SELECT id::text FROM hosts WHERE false;

-- second-dataset: properties
SELECT id::text FROM properties WHERE false;

-- second-dataset: rooms
SELECT id::text FROM rooms WHERE false;

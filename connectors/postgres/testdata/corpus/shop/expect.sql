-- Person A: Ann Archer, customer 1, who signed up as Ann.Archer@Example.COM
-- and asks with the lower-cased address.
-- person: email ann.archer@example.com
-- second: email bob@example.com

-- dataset: customer
SELECT customer_id::text FROM customer WHERE customer_id = 1;

-- dataset: rental
-- Her rentals 1 and 2 (rental 3 is Bob's, though she paid for it).
SELECT rental_id::text FROM rental WHERE customer_id = 1;

-- dataset: payment
-- Her payments for her own rentals, or for no rental: (2023-03-01, 1) and
-- (2024-05-01, 3). (2024-05-01, 2) is her money for Bob's rental 3: not hers
-- alone. Payment id 1 of 2024 is Bob's.
SELECT payment_date::text || '/' || payment_id::text FROM payment
WHERE customer_id = 1 AND (rental_id IS NULL OR rental_id IN (1, 2));

-- dataset: address
-- None: address 10 is Ann's and Bob's household.
SELECT address_id::text FROM address WHERE false;

-- dataset: staff
SELECT staff_id::text FROM staff WHERE false;

-- Person B: Bob Archer, customer 2, of Ann's household.

-- second-dataset: customer
SELECT customer_id::text FROM customer WHERE customer_id = 2;

-- second-dataset: rental
-- His rental 3 (Ann paid part of it).
SELECT rental_id::text FROM rental WHERE customer_id = 2;

-- second-dataset: payment
-- His payments for his own rentals, or for no rental: (2023-03-02, 2) for
-- rental 3 and (2024-05-01, 1). Ann's money for his rental 3 is not his
-- alone (nor hers).
SELECT p.payment_date::text || '/' || p.payment_id::text FROM payment AS p
WHERE p.customer_id = 2
  AND (p.rental_id IS NULL OR EXISTS (SELECT 1 FROM rental AS r WHERE r.rental_id = p.rental_id AND r.customer_id = 2));

-- second-dataset: address
-- None: address 10 is Ann's and Bob's household.
SELECT address_id::text FROM address WHERE false;

-- second-dataset: staff
SELECT staff_id::text FROM staff WHERE false;

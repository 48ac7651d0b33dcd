-- Person A: Ann Archer, contact 1, stored as ANN@ACME.EXAMPLE.
-- person: email ann@acme.example
-- second: email bob@acme.example

-- dataset: contacts
SELECT id::text FROM contacts WHERE id = 1;

-- dataset: deals
-- Deals 1 (owned by Sam) and 3 (by Tom): the owner does not make them Sam's or Tom's.
SELECT id::text FROM deals WHERE contact_id = 1;

-- dataset: activities
-- No primary key: a row's key is the digest of the row.
SELECT 'row:' || md5(a::text) FROM activities AS a WHERE contact_id = 1;

-- dataset: companies
-- None: Acme is Ann's and Bob's.
SELECT id::text FROM companies WHERE false;

-- dataset: staff
SELECT id::text FROM staff WHERE false;

-- Person B: Bob Brown, contact 2 at the same company, Acme.

-- second-dataset: contacts
SELECT id::text FROM contacts WHERE id = 2;

-- second-dataset: deals
-- Deal 2, owned by Sam, who does not make it his.
SELECT id::text FROM deals WHERE contact_id = 2;

-- second-dataset: activities
SELECT 'row:' || md5(a::text) FROM activities AS a WHERE contact_id = 2;

-- second-dataset: companies
-- None: Acme is Ann's and Bob's.
SELECT id::text FROM companies WHERE false;

-- second-dataset: staff
SELECT id::text FROM staff WHERE false;

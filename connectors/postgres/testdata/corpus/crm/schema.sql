-- A CRM shaped after Twenty/EspoCRM: contacts at companies many contacts
-- share, deals with an owner (a staff member) and a contact, and an
-- activity log without a primary key. Hazards: upper-case emails, citext
-- staff emails, an enum with a CHECK on deals, jsonb custom fields, a text[]
-- of tags, a BEFORE UPDATE trigger stamping updated_at, a table without a
-- primary key, a shared company.
CREATE EXTENSION IF NOT EXISTS citext;
CREATE TYPE deal_stage AS ENUM ('lead', 'qualified', 'won', 'lost');

CREATE TABLE companies (
  id int PRIMARY KEY,
  name text NOT NULL,
  domain text
);
CREATE TABLE staff (
  id int PRIMARY KEY,
  email citext NOT NULL UNIQUE,
  full_name text NOT NULL
);
CREATE TABLE contacts (
  id int PRIMARY KEY,
  company_id int REFERENCES companies,
  email text,
  full_name text NOT NULL,
  tags text[] NOT NULL DEFAULT '{}',
  custom jsonb NOT NULL DEFAULT '{}',
  created_at timestamptz NOT NULL DEFAULT '2024-01-01 00:00+00',
  updated_at timestamptz NOT NULL DEFAULT '2024-01-01 00:00+00'
);
CREATE INDEX contacts_lower_email_idx ON contacts (lower(email));
CREATE TABLE deals (
  id int PRIMARY KEY,
  contact_id int NOT NULL REFERENCES contacts,
  owner_id int NOT NULL REFERENCES staff,
  title text NOT NULL,
  amount numeric(10,2) NOT NULL CHECK (amount >= 0),
  stage deal_stage NOT NULL DEFAULT 'lead',
  closed_at timestamptz,
  CHECK (stage NOT IN ('won', 'lost') OR closed_at IS NOT NULL),
  created_at timestamptz NOT NULL DEFAULT '2024-01-01 00:00+00'
);
CREATE TABLE activities (
  contact_id int NOT NULL REFERENCES contacts,
  kind text NOT NULL CHECK (kind IN ('call', 'email', 'meeting')),
  note text,
  happened_at timestamptz NOT NULL
);

CREATE FUNCTION stamp_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.updated_at = now();
  RETURN NEW;
END $$;
CREATE TRIGGER stamp_updated_at BEFORE UPDATE ON contacts FOR EACH ROW EXECUTE FUNCTION stamp_updated_at();

-- Ann (contact 1) and Bob (contact 2) work at Acme (company 1); Cat
-- (contact 3) at Beta. Sam and Tom are staff; Sam owns Ann's and Bob's deals.
INSERT INTO companies VALUES (1, 'Acme Ltd', 'acme.example'), (2, 'Beta GmbH', 'beta.example');
INSERT INTO staff VALUES (1, 'Sam@Crm.Example', 'Sam Stone'), (2, 'tom@crm.example', 'Tom Tate');
INSERT INTO contacts VALUES
  (1, 1, 'ANN@ACME.EXAMPLE', 'Ann Archer', '{vip,newsletter}', '{"linkedin": "ann-archer", "phone": "+44 1"}', '2024-01-02 00:00+00', '2024-01-02 00:00+00'),
  (2, 1, 'bob@acme.example', 'Bob Brown', '{}', '{"phone": "+44 2"}', '2024-01-03 00:00+00', '2024-01-03 00:00+00'),
  (3, 2, 'Cat@Beta.Example', 'Cat Cole', '{newsletter}', '{}', '2024-01-04 00:00+00', '2024-01-04 00:00+00');
INSERT INTO deals VALUES
  (1, 1, 1, 'Acme renewal', 1200.00, 'won', '2024-03-01 00:00+00', '2024-02-01 00:00+00'),
  (2, 2, 1, 'Acme upsell', 300.00, 'qualified', NULL, '2024-02-02 00:00+00'),
  (3, 1, 2, 'Ann consulting', 50.00, 'lead', NULL, '2024-02-03 00:00+00'),
  (4, 3, 2, 'Beta pilot', 99.00, 'lost', '2024-04-01 00:00+00', '2024-02-04 00:00+00');
-- Rows without a key; Ann's two calls differ only in their note.
INSERT INTO activities VALUES
  (1, 'call', 'intro call', '2024-02-01 10:00+00'),
  (1, 'call', 'follow-up', '2024-02-01 10:00+00'),
  (2, 'email', 'sent pricing', '2024-02-02 10:00+00'),
  (3, 'meeting', NULL, '2024-02-03 10:00+00');

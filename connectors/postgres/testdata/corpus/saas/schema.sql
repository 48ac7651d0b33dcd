-- A multi-tenant SaaS shaped after Rails/Django starter kits: tenants
-- (organisations, shared by their members, never one person's); users, one
-- row per tenant a person signed up in; memberships keyed by (user_id,
-- tenant_id) with a role enum; invitations by email with invited_by (a
-- relationship between inviter and invitee); an audit log partitioned by
-- month whose primary key (created_at, id) lets ids repeat across
-- partitions and whose foreign keys are declared on each partition; API
-- tokens stored hashed. Hazards: one person with two users rows (same
-- address, differently cased, in two tenants), a citext invitation email,
-- an enum, a composite primary key, partitions with keys on the
-- partitions, an audit row with two people (actor and target), an
-- invitation Ann sent (not hers) and one she received (hers), a unique
-- token hash, a BEFORE UPDATE trigger on users.
CREATE EXTENSION IF NOT EXISTS citext;
CREATE TYPE member_role AS ENUM ('owner', 'admin', 'member');

CREATE TABLE tenants (
  id int PRIMARY KEY,
  name text NOT NULL,
  slug text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9-]+$'),
  created_at timestamptz NOT NULL DEFAULT '2024-01-01 00:00+00'
);
CREATE TABLE users (
  id int PRIMARY KEY,
  tenant_id int NOT NULL REFERENCES tenants,
  email text NOT NULL,
  full_name text,
  created_at timestamptz NOT NULL DEFAULT '2024-01-01 00:00+00',
  updated_at timestamptz NOT NULL DEFAULT '2024-01-01 00:00+00'
);
CREATE UNIQUE INDEX users_tenant_lower_email_idx ON users (tenant_id, lower(email));
CREATE INDEX users_lower_email_idx ON users (lower(email));
CREATE TABLE memberships (
  user_id int NOT NULL REFERENCES users,
  tenant_id int NOT NULL REFERENCES tenants,
  role member_role NOT NULL DEFAULT 'member',
  created_at timestamptz NOT NULL DEFAULT '2024-01-01 00:00+00',
  PRIMARY KEY (user_id, tenant_id)
);
CREATE TABLE invitations (
  id int PRIMARY KEY,
  tenant_id int NOT NULL REFERENCES tenants,
  email citext NOT NULL,
  invited_by int NOT NULL REFERENCES users,
  role member_role NOT NULL DEFAULT 'member',
  created_at timestamptz NOT NULL,
  accepted_at timestamptz,
  CHECK (accepted_at IS NULL OR accepted_at >= created_at)
);
CREATE TABLE audit_log (
  id int NOT NULL,
  tenant_id int NOT NULL,
  actor_id int NOT NULL,
  target_id int,
  action text NOT NULL,
  details jsonb NOT NULL DEFAULT '{}',
  ip inet,
  created_at timestamptz NOT NULL,
  PRIMARY KEY (created_at, id)
) PARTITION BY RANGE (created_at);
CREATE TABLE audit_log_2024_01 PARTITION OF audit_log FOR VALUES FROM ('2024-01-01 00:00+00') TO ('2024-02-01 00:00+00');
CREATE TABLE audit_log_2024_02 PARTITION OF audit_log FOR VALUES FROM ('2024-02-01 00:00+00') TO ('2024-03-01 00:00+00');
ALTER TABLE audit_log_2024_01 ADD FOREIGN KEY (actor_id) REFERENCES users, ADD FOREIGN KEY (target_id) REFERENCES users,
  ADD FOREIGN KEY (tenant_id) REFERENCES tenants;
ALTER TABLE audit_log_2024_02 ADD FOREIGN KEY (actor_id) REFERENCES users, ADD FOREIGN KEY (target_id) REFERENCES users,
  ADD FOREIGN KEY (tenant_id) REFERENCES tenants;
CREATE TABLE api_tokens (
  id int PRIMARY KEY,
  user_id int NOT NULL REFERENCES users,
  name text NOT NULL,
  token_hash text NOT NULL UNIQUE,
  created_at timestamptz NOT NULL DEFAULT '2024-01-01 00:00+00',
  last_used_at timestamptz
);

CREATE FUNCTION stamp_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.updated_at = now();
  RETURN NEW;
END $$;
CREATE TRIGGER stamp_updated_at BEFORE UPDATE ON users FOR EACH ROW EXECUTE FUNCTION stamp_updated_at();

-- Tenants Acme (1) and Beta (2). Ann is user 1 at Acme (Ann@Acme.Example)
-- and user 4 at Beta (ann@acme.example); Bob is user 2 at Acme and a member
-- of Beta too; Cat is user 3, Beta's owner.
INSERT INTO tenants VALUES (1, 'Acme Ltd', 'acme', '2024-01-01 00:00+00'), (2, 'Beta GmbH', 'beta', '2024-01-02 00:00+00');
INSERT INTO users VALUES
  (1, 1, 'Ann@Acme.Example', 'Ann Archer', '2024-01-01 00:00+00', '2024-01-01 00:00+00'),
  (2, 1, 'bob@acme.example', 'Bob Brown', '2024-01-02 00:00+00', '2024-01-02 00:00+00'),
  (3, 2, 'CAT@BETA.EXAMPLE', 'Cat Cole', '2024-01-02 00:00+00', '2024-01-02 00:00+00'),
  (4, 2, 'ann@acme.example', 'Ann A.', '2024-02-01 00:00+00', '2024-02-01 00:00+00');
INSERT INTO memberships VALUES
  (1, 1, 'owner', '2024-01-01 00:00+00'),
  (2, 1, 'member', '2024-01-05 00:00+00'),
  (3, 2, 'owner', '2024-01-02 00:00+00'),
  (4, 2, 'admin', '2024-02-01 00:00+00'),
  (2, 2, 'member', '2024-02-02 00:00+00');
-- Ann invited Bob (1, accepted) and Dan (3, pending) to Acme; Cat invited
-- Ann to Beta (2, accepted as user 4), stored upper-case.
INSERT INTO invitations VALUES
  (1, 1, 'bob@acme.example', 1, 'member', '2024-01-04 00:00+00', '2024-01-05 00:00+00'),
  (2, 2, 'ANN@ACME.EXAMPLE', 3, 'admin', '2024-01-30 00:00+00', '2024-02-01 00:00+00'),
  (3, 1, 'Dan@Dent.Example', 1, 'member', '2024-02-03 00:00+00', NULL);
-- Ids repeat across partitions: (2024-01-05, 1) and (2024-02-01, 1).
INSERT INTO audit_log VALUES
  (1, 1, 1, 2, 'member.add', '{"role": "member"}', '192.0.2.1', '2024-01-05 00:00+00'),
  (2, 1, 2, NULL, 'login', '{}', '192.0.2.2', '2024-01-06 00:00+00'),
  (1, 2, 3, 4, 'member.role', '{"role": "admin"}', '192.0.2.3', '2024-02-01 00:00+00'),
  (2, 2, 4, NULL, 'login', '{}', '192.0.2.1', '2024-02-02 00:00+00'),
  (3, 2, 3, 2, 'member.add', '{"role": "member"}', '192.0.2.3', '2024-02-02 00:00+00');
INSERT INTO api_tokens VALUES
  (1, 1, 'ci', 'sha256:aaaa', '2024-01-10 00:00+00', '2024-02-10 00:00+00'),
  (2, 4, 'laptop', 'sha256:bbbb', '2024-02-05 00:00+00', NULL),
  (3, 2, 'ci', 'sha256:cccc', '2024-01-11 00:00+00', NULL);

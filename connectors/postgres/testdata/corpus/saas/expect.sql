-- Person A: Ann Archer, user 1 at Acme (Ann@Acme.Example) and user 4 at
-- Beta (ann@acme.example): one person, two accounts.
-- person: email ann@acme.example
-- second: email bob@acme.example

-- dataset: users
SELECT id::text FROM users WHERE id IN (1, 4);

-- dataset: memberships
-- Composite key user_id/tenant_id: her (1, 1) and (4, 2); Bob's (2, 2)
-- in the same tenant Beta is his.
SELECT user_id::text || '/' || tenant_id::text FROM memberships WHERE user_id IN (1, 4);

-- dataset: invitations
-- The one sent to her (2, stored upper-case); not those she sent (1, 3).
SELECT id::text FROM invitations WHERE lower(email::text) = 'ann@acme.example';

-- dataset: audit_log
-- Entries where either of her accounts is actor or target: (2024-01-05, 1)
-- (she added Bob), (2024-02-01, 1) (Cat changed her role), (2024-02-02, 2)
-- (her login). Bob's login and Cat adding Bob are not hers.
SELECT created_at::text || '/' || id::text FROM audit_log
WHERE actor_id IN (1, 4) OR target_id IN (1, 4);

-- dataset: api_tokens
SELECT id::text FROM api_tokens WHERE user_id IN (1, 4);

-- dataset: tenants
-- None: Acme and Beta are their members'.
SELECT id::text FROM tenants WHERE false;

-- Person B: Bob Brown, user 2 at Acme and a member of Beta.

-- second-dataset: users
SELECT id::text FROM users WHERE lower(email) = 'bob@acme.example';

-- second-dataset: memberships
-- Both his memberships, (2, 1) and (2, 2).
SELECT m.user_id::text || '/' || m.tenant_id::text
FROM memberships AS m JOIN users AS u ON u.id = m.user_id
WHERE lower(u.email) = 'bob@acme.example';

-- second-dataset: invitations
-- The one sent to him (1, from Ann).
SELECT id::text FROM invitations WHERE lower(email::text) = 'bob@acme.example';

-- second-dataset: audit_log
-- Entries where he is actor or target: Ann adding him (2024-01-05, 1), his
-- login (2024-01-06, 2), Cat adding him to Beta (2024-02-02, 3).
SELECT created_at::text || '/' || id::text FROM audit_log
WHERE actor_id = 2 OR target_id = 2;

-- second-dataset: api_tokens
SELECT id::text FROM api_tokens WHERE user_id = 2;

-- second-dataset: tenants
SELECT id::text FROM tenants WHERE false;

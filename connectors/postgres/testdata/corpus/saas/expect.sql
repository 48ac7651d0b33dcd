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

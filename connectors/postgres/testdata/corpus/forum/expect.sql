-- Person A: Ann Archer, user 1, who signed up as Ann.Archer@Example.COM and
-- asks with the lower-cased address.
-- person: email ann.archer@example.com
-- second: email bob@example.com

-- dataset: users
SELECT id::text FROM users WHERE id = 1;

-- dataset: topics
-- Topic 1; Bob's reply in it does not make it his, nor it hers.
SELECT id::text FROM topics WHERE user_id = 1;

-- dataset: posts
-- Her posts 1 and 4, whoever's topic they are in; Bob's post 2 (in her
-- topic, quoting her) and post 3 (which she quotes) are Bob's.
SELECT id::text FROM posts WHERE user_id = 1;

-- dataset: private_messages
-- A message is both people's: the one she sent Bob (1) and the one he sent
-- her (2). Bob's message to Cat about her (3) is not hers.
SELECT id::text FROM private_messages WHERE 1 IN (sender_id, recipient_id);

-- dataset: moderator_actions
-- Cat's warning of her (1); not her own silencing of Dan (2).
SELECT id::text FROM moderator_actions WHERE target_user_id = 1;

-- dataset: categories
SELECT id::text FROM categories WHERE false;

-- Person B: Bob Brown, user 2, stored as BOB@EXAMPLE.COM.

-- second-dataset: users
SELECT id::text FROM users WHERE id = 2;

-- second-dataset: topics
SELECT id::text FROM topics WHERE user_id = 2;

-- second-dataset: posts
-- His posts 2 (in Ann's topic, quoting her) and 3, whoever's topic or
-- quote they are in.
SELECT id::text FROM posts WHERE user_id = 2;

-- second-dataset: private_messages
-- Every message he sent or received: 1 and 2 with Ann, 3 to Cat.
SELECT id::text FROM private_messages WHERE 2 IN (sender_id, recipient_id);

-- second-dataset: moderator_actions
-- Cat's warning of him (3).
SELECT id::text FROM moderator_actions WHERE target_user_id = 2;

-- second-dataset: categories
SELECT id::text FROM categories WHERE false;

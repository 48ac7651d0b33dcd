-- A forum shaped after Discourse: users with a citext username, a jsonb
-- profile and a text[] of badges; categories (a lookup); topics a user
-- starts; posts by a user in a topic, a reply quoting another user's post
-- (reply_to_post_id, a self-reference: a relationship between two people);
-- private messages between two users (sender_id, recipient_id: both
-- people's); moderator actions (moderator_id, target_user_id). Hazards:
-- mixed- and upper-case emails, NOT NULL, a CHECK that it looks like an
-- address (an erasure writes an email-shaped keyed hash), unique on
-- lower(email), a
-- citext username, jsonb, text[], a BEFORE UPDATE trigger stamping
-- updated_at on users, topics and posts, a post by one person in another
-- person's topic (both ways), a reply to another person's post (both ways:
-- Ann's post 1, which Bob's reply references, is masked, not deleted), a
-- message A sent and one A received, a user who is both a moderator and
-- moderated.
CREATE EXTENSION IF NOT EXISTS citext;

CREATE TABLE users (
  id int PRIMARY KEY,
  username citext NOT NULL UNIQUE,
  email text NOT NULL CHECK (email LIKE '%_@_%'),
  name text,
  profile jsonb NOT NULL DEFAULT '{}',
  badges text[] NOT NULL DEFAULT '{}',
  moderator boolean NOT NULL DEFAULT false,
  created_at timestamptz NOT NULL DEFAULT '2024-01-01 00:00+00',
  updated_at timestamptz NOT NULL DEFAULT '2024-01-01 00:00+00'
);
CREATE UNIQUE INDEX users_lower_email_idx ON users (lower(email));
CREATE TABLE categories (
  id int PRIMARY KEY,
  name text NOT NULL,
  slug text NOT NULL UNIQUE
);
CREATE TABLE topics (
  id int PRIMARY KEY,
  category_id int NOT NULL REFERENCES categories,
  user_id int NOT NULL REFERENCES users,
  title text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT '2024-01-01 00:00+00',
  updated_at timestamptz NOT NULL DEFAULT '2024-01-01 00:00+00'
);
CREATE TABLE posts (
  id int PRIMARY KEY,
  topic_id int NOT NULL REFERENCES topics,
  user_id int NOT NULL REFERENCES users,
  reply_to_post_id int REFERENCES posts,
  raw text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT '2024-01-01 00:00+00',
  updated_at timestamptz NOT NULL DEFAULT '2024-01-01 00:00+00'
);
CREATE TABLE private_messages (
  id int PRIMARY KEY,
  sender_id int NOT NULL REFERENCES users,
  recipient_id int NOT NULL REFERENCES users,
  body text NOT NULL,
  sent_at timestamptz NOT NULL,
  CHECK (sender_id <> recipient_id)
);
CREATE TABLE moderator_actions (
  id int PRIMARY KEY,
  moderator_id int NOT NULL REFERENCES users,
  target_user_id int NOT NULL REFERENCES users,
  action text NOT NULL CHECK (action IN ('warn', 'silence', 'suspend')),
  reason text,
  created_at timestamptz NOT NULL
);

CREATE FUNCTION stamp_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.updated_at = now();
  RETURN NEW;
END $$;
CREATE TRIGGER stamp_updated_at BEFORE UPDATE ON users FOR EACH ROW EXECUTE FUNCTION stamp_updated_at();
CREATE TRIGGER stamp_updated_at BEFORE UPDATE ON topics FOR EACH ROW EXECUTE FUNCTION stamp_updated_at();
CREATE TRIGGER stamp_updated_at BEFORE UPDATE ON posts FOR EACH ROW EXECUTE FUNCTION stamp_updated_at();

-- People: Ann (user 1, a moderator), Bob (2), Cat (3, a moderator), Dan (4).
INSERT INTO users VALUES
  (1, 'AnnArcher', 'Ann.Archer@Example.COM', 'Ann Archer', '{"bio": "knits", "website": "https://ann.example"}', '{first_post,moderator}', true, '2024-01-02 00:00+00', '2024-01-02 00:00+00'),
  (2, 'bob', 'BOB@EXAMPLE.COM', 'Bob Brown', '{}', '{first_post}', false, '2024-01-03 00:00+00', '2024-01-03 00:00+00'),
  (3, 'Cat', 'cat@example.com', NULL, '{"bio": "mod"}', '{}', true, '2024-01-04 00:00+00', '2024-01-04 00:00+00'),
  (4, 'dan', 'Dan@Example.com', 'Dan Dent', '{}', '{}', false, '2024-01-05 00:00+00', '2024-01-05 00:00+00');
INSERT INTO categories VALUES (1, 'General', 'general'), (2, 'Support', 'support');
INSERT INTO topics VALUES
  (1, 1, 1, 'Ann asks about yarn', '2024-02-01 00:00+00', '2024-02-01 00:00+00'),
  (2, 1, 2, 'Bob''s bike', '2024-02-02 00:00+00', '2024-02-02 00:00+00'),
  (3, 2, 3, 'Forum rules', '2024-02-03 00:00+00', '2024-02-03 00:00+00');
-- Post 2 is Bob's reply, in Ann's topic, quoting Ann's post 1; post 4 is
-- Ann's reply, in Bob's topic, quoting Bob's post 3.
INSERT INTO posts VALUES
  (1, 1, 1, NULL, 'Which yarn for socks?', '2024-02-01 00:00+00', '2024-02-01 00:00+00'),
  (2, 1, 2, 1, '> Which yarn for socks?\nMerino.', '2024-02-01 01:00+00', '2024-02-01 01:00+00'),
  (3, 2, 2, NULL, 'My bike squeaks.', '2024-02-02 00:00+00', '2024-02-02 00:00+00'),
  (4, 2, 1, 3, '> My bike squeaks.\nOil it.', '2024-02-02 01:00+00', '2024-02-02 01:00+00'),
  (5, 3, 3, NULL, 'Be kind.', '2024-02-03 00:00+00', '2024-02-03 00:00+00'),
  (6, 3, 4, 5, 'Noted.', '2024-02-03 01:00+00', '2024-02-03 01:00+00');
INSERT INTO private_messages VALUES
  (1, 1, 2, 'Hi Bob, about your bike', '2024-02-04 00:00+00'),
  (2, 2, 1, 'Thanks Ann', '2024-02-04 01:00+00'),
  (3, 2, 3, 'Is Ann a moderator?', '2024-02-04 02:00+00'),
  (4, 4, 3, 'Hello', '2024-02-04 03:00+00');
-- Cat warns Ann (1); Ann, as a moderator, silences Dan (2); Cat warns Bob (3).
INSERT INTO moderator_actions VALUES
  (1, 3, 1, 'warn', 'off-topic', '2024-02-05 00:00+00'),
  (2, 1, 4, 'silence', 'spam', '2024-02-05 01:00+00'),
  (3, 3, 2, 'warn', NULL, '2024-02-05 02:00+00');

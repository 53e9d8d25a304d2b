-- How many may watch at once with one subscribe token (README "Viewer tokens"): NULL for no cap
-- beyond the server's own.
ALTER TABLE subscribe_tokens ADD COLUMN max_viewers INTEGER;

-- What the engine's check of an answer found, so a conversation opened later still marks
-- the sentences its sources do not support: JSON {"unsupported_sentences": [...], "refused": bool}.
ALTER TABLE messages ADD COLUMN checks TEXT;

-- Subjects, their enrolled embeddings, and the change log that replicas and the in-memory index follow.
-- Times are Unix milliseconds (BIGINT), portable across SQLite and PostgreSQL through sqlx::Any.
CREATE TABLE IF NOT EXISTS subjects (
    id         TEXT PRIMARY KEY,
    metadata   TEXT,
    created_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS images (
    id             TEXT PRIMARY KEY,
    subject_id     TEXT NOT NULL REFERENCES subjects (id) ON DELETE CASCADE,
    model          TEXT NOT NULL,
    weights_sha256 TEXT NOT NULL,
    -- The embedding as f32 little-endian bytes.
    embedding      BLOB NOT NULL,
    created_ms     BIGINT NOT NULL,
    -- Position within its enrolment request: images of one request share created_ms.
    ordinal        BIGINT NOT NULL
);

CREATE INDEX IF NOT EXISTS images_by_subject ON images (subject_id, created_ms, ordinal);

-- One row per image added or removed, in commit order (writers are serialised).
-- AUTOINCREMENT: a sequence number is never handed out twice, even after the newest row is deleted.
CREATE TABLE IF NOT EXISTS changes (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    op       TEXT NOT NULL,
    image_id TEXT NOT NULL,
    model    TEXT NOT NULL
);

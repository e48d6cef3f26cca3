-- The enrolled images' own bytes, stored only when the server runs with --keep-images, so that
-- `simverify reindex` can re-embed them after a model's weights change. A table of its own keeps the rows
-- that every start loads into the search index small; deleting an image (or its subject) deletes its bytes.
CREATE TABLE IF NOT EXISTS kept_images (
    image_id TEXT PRIMARY KEY REFERENCES images (id) ON DELETE CASCADE,
    bytes    BLOB NOT NULL
);

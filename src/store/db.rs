//! The durable store: opening it (an SQLite file, or PostgreSQL for several replicas), migrating it, and
//! every query, through one `sqlx::Any` code path (`$n` placeholders work on both backends).
//!
//! A write is one transaction that also appends to `changes`, and writers are serialised (SQLite:
//! `BEGIN IMMEDIATE`; PostgreSQL: an EXCLUSIVE lock on `changes`), so change numbers become visible in
//! order. A write returns only after its commit, which is when the service answers.

use std::path::Path;
use std::time::Duration;

use futures::TryStreamExt;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{Any, AnyPool, Executor, Row, Transaction};

use super::ids::ImageId;
use super::migrations::{Dialect, Embedded};

/// Applied on every SQLite connection. WAL lets searches and enrolments read while one writer writes.
/// `synchronous=FULL` makes every commit fsync the WAL before it returns, so an acknowledged enrolment
/// survives a power cut as well as a killed process (NORMAL would survive only the latter; the fsync costs
/// less than the forward pass every enrolment runs anyway). `foreign_keys` keeps images tied to subjects.
const SQLITE_PRAGMAS: &str = "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;";

/// How long a request waits for a pooled connection before the store counts as unavailable.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// Cheap to clone (the pool is shared).
#[derive(Clone)]
pub(crate) struct Store {
    pub(super) pool: AnyPool,
    dialect: Dialect,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum StoreError {
    #[error("the store must be a sqlite: or postgres:// URL, not one starting {0:?}")]
    Scheme(String),
    #[error("cannot create the store's directory {path}: {source}")]
    Directory { path: String, source: std::io::Error },
    /// The database cannot be reached or is too busy: worth retrying.
    #[error("the store cannot be reached: {0}")]
    Unavailable(sqlx::Error),
    #[error("a store query failed: {0}")]
    Query(sqlx::Error),
    #[error("the store's schema could not be migrated: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("the store holds a malformed row: {0}")]
    Corrupt(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        let busy = matches!(&err, sqlx::Error::Database(db) if db.code().as_deref() == Some("5"));
        match err {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => Self::Unavailable(err),
            // SQLITE_BUSY past the busy timeout: another process held the write lock too long.
            _ if busy => Self::Unavailable(err),
            _ => Self::Query(err),
        }
    }
}

/// A subject as stored, with how many images it has.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SubjectRow {
    pub(crate) id: String,
    /// The caller's JSON, as compact text; `None` when none was sent.
    pub(crate) metadata: Option<String>,
    pub(crate) created_ms: i64,
    pub(crate) updated_ms: i64,
    pub(crate) image_count: i64,
}

/// One enrolled image's embedding, with what made it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ImageRow {
    pub(crate) id: ImageId,
    pub(crate) subject: String,
    pub(crate) model: String,
    /// SHA-256 of the weights that computed `embedding`: vectors of other weights are not comparable.
    pub(crate) weights_sha256: String,
    pub(crate) embedding: Vec<f32>,
    pub(crate) created_ms: i64,
}

/// What `PUT /subjects/{id}` found.
#[derive(Debug)]
pub(crate) enum Created {
    New(SubjectRow),
    /// It existed already with the same metadata: the PUT is a harmless repeat.
    Identical(SubjectRow),
    /// It existed already with other metadata.
    Conflict,
}

/// One entry of the change log, joined with the image it added (when that image still exists).
#[derive(Debug)]
pub(crate) struct Change {
    pub(crate) seq: i64,
    pub(crate) image: ImageId,
    pub(crate) model: String,
    /// `Some` for an addition whose image is still stored; `None` for a removal, or an addition
    /// undone since (a later entry removes it).
    pub(crate) added: Option<ImageRow>,
}

const SUBJECT_COLUMNS: &str = "s.id, s.metadata, s.created_ms, s.updated_ms, \
     (SELECT COUNT(*) FROM images i WHERE i.subject_id = s.id) AS image_count";
const IMAGE_COLUMNS: &str = "id, subject_id, model, weights_sha256, embedding, created_ms";

impl Store {
    /// Connects, creating an SQLite file (and its directory) when needed, and runs the migrations.
    pub(crate) async fn open(url: &str) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let (dialect, url) = if url.starts_with("sqlite:") {
            (Dialect::Sqlite, sqlite_url(url)?)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Dialect::Postgres, url.to_string())
        } else {
            return Err(StoreError::Scheme(url.chars().take(12).collect()));
        };
        let options = AnyPoolOptions::new().acquire_timeout(ACQUIRE_TIMEOUT);
        let pool = match dialect {
            // Writers queue on SQLite's file lock anyway; a few connections serve concurrent readers.
            Dialect::Sqlite => {
                options
                    .max_connections(4)
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            conn.execute(SQLITE_PRAGMAS).await?;
                            Ok(())
                        })
                    })
                    .connect(&url)
                    .await?
            }
            Dialect::Postgres => options.max_connections(8).connect(&url).await?,
        };
        sqlx::migrate::Migrator::new(Embedded(dialect))
            .await?
            .run(&pool)
            .await?;
        Ok(Store { pool, dialect })
    }

    /// A transaction that holds the store's single write lock from its first statement.
    pub(super) async fn begin_write(&self) -> Result<Transaction<'static, Any>, StoreError> {
        match self.dialect {
            // IMMEDIATE takes the write lock now: a deferred transaction that reads first could find,
            // when it comes to write, that another process wrote since its snapshot, and fail.
            Dialect::Sqlite => Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?),
            Dialect::Postgres => {
                let mut tx = self.pool.begin().await?;
                // Serialises writers across replicas so that `changes.seq` commits in order: otherwise a
                // follower could read seq 11 before seq 10 commits, and never come back for 10.
                tx.execute("LOCK TABLE changes IN EXCLUSIVE MODE").await?;
                Ok(tx)
            }
        }
    }

    /// Creates a subject, or reports the one that exists (same or other metadata).
    pub(crate) async fn create_subject(
        &self,
        id: &str,
        metadata: Option<&str>,
        now_ms: i64,
    ) -> Result<Created, StoreError> {
        let inserted = sqlx::query(
            "INSERT INTO subjects (id, metadata, created_ms, updated_ms) VALUES ($1, $2, $3, $3) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(id)
        .bind(metadata)
        .bind(now_ms)
        .execute(&self.pool)
        .await?
        .rows_affected();
        let row = self.subject(id).await?.ok_or_else(|| {
            // Deleted between the two statements by another request: rare, and a retry settles it.
            StoreError::Corrupt(format!("subject {id:?} vanished while being created"))
        })?;
        if inserted == 1 {
            return Ok(Created::New(row));
        }
        let same = parse_json(row.metadata.as_deref()) == parse_json(metadata);
        Ok(if same {
            Created::Identical(row)
        } else {
            Created::Conflict
        })
    }

    pub(crate) async fn subject(&self, id: &str) -> Result<Option<SubjectRow>, StoreError> {
        let row = sqlx::query(&format!("SELECT {SUBJECT_COLUMNS} FROM subjects s WHERE s.id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| subject_row(&r)).transpose()
    }

    /// Up to `limit` subjects whose id sorts after `after` (the cursor), in id order.
    pub(crate) async fn list_subjects(&self, after: &str, limit: i64) -> Result<Vec<SubjectRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {SUBJECT_COLUMNS} FROM subjects s WHERE s.id > $1 ORDER BY s.id LIMIT $2"
        ))
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(subject_row).collect()
    }

    /// Deletes a subject and its images; false when there was no such subject.
    pub(crate) async fn delete_subject(&self, id: &str) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO changes (op, image_id, model) SELECT 'remove', id, model FROM images WHERE subject_id = $1",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM images WHERE subject_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let deleted = sqlx::query("DELETE FROM subjects WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(deleted == 1)
    }

    /// Stores one image per embedding for `subject`, all or none; `None` when there is no such subject.
    /// `kept`, when given, holds each image's own bytes (in the order of `embeddings`), stored beside
    /// its embedding for `simverify reindex` (`--keep-images`).
    pub(crate) async fn add_images(
        &self,
        subject: &str,
        model: &str,
        weights_sha256: &str,
        embeddings: &[Vec<f32>],
        kept: Option<&[&[u8]]>,
        now_ms: i64,
    ) -> Result<Option<Vec<ImageId>>, StoreError> {
        assert!(
            kept.is_none_or(|kept| kept.len() == embeddings.len()),
            "kept images pair with embeddings one to one; this is a bug"
        );
        let mut tx = self.begin_write().await?;
        let found = sqlx::query("UPDATE subjects SET updated_ms = $2 WHERE id = $1")
            .bind(subject)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if found == 0 {
            return Ok(None);
        }
        let mut ids = Vec::with_capacity(embeddings.len());
        for (ordinal, embedding) in embeddings.iter().enumerate() {
            let id = ImageId::random();
            sqlx::query(&format!(
                "INSERT INTO images ({IMAGE_COLUMNS}, ordinal) VALUES ($1, $2, $3, $4, $5, $6, $7)"
            ))
            .bind(id.to_string())
            .bind(subject)
            .bind(model)
            .bind(weights_sha256)
            .bind(to_bytes(embedding))
            .bind(now_ms)
            .bind(ordinal as i64)
            .execute(&mut *tx)
            .await?;
            if let Some(bytes) = kept.map(|kept| kept[ordinal]) {
                sqlx::query("INSERT INTO kept_images (image_id, bytes) VALUES ($1, $2)")
                    .bind(id.to_string())
                    .bind(bytes)
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query("INSERT INTO changes (op, image_id, model) VALUES ('add', $1, $2)")
                .bind(id.to_string())
                .bind(model)
                .execute(&mut *tx)
                .await?;
            ids.push(id);
        }
        tx.commit().await?;
        Ok(Some(ids))
    }

    /// Deletes one image of `subject`; false when the subject has no such image.
    pub(crate) async fn delete_image(&self, subject: &str, image: ImageId, now_ms: i64) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let model: Option<String> =
            sqlx::query_scalar("DELETE FROM images WHERE id = $1 AND subject_id = $2 RETURNING model")
                .bind(image.to_string())
                .bind(subject)
                .fetch_optional(&mut *tx)
                .await?;
        let Some(model) = model else {
            return Ok(false);
        };
        sqlx::query("INSERT INTO changes (op, image_id, model) VALUES ('remove', $1, $2)")
            .bind(image.to_string())
            .bind(model)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE subjects SET updated_ms = $2 WHERE id = $1")
            .bind(subject)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// The images of `subject`, oldest first; `None` when there is no such subject.
    pub(crate) async fn subject_images(&self, subject: &str) -> Result<Option<Vec<ImageRow>>, StoreError> {
        // One read transaction: the subject and its images from the same snapshot.
        let mut tx = self.pool.begin().await?;
        let exists: Option<String> = sqlx::query_scalar("SELECT id FROM subjects WHERE id = $1")
            .bind(subject)
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_none() {
            return Ok(None);
        }
        let rows = sqlx::query(&format!(
            "SELECT {IMAGE_COLUMNS} FROM images WHERE subject_id = $1 ORDER BY created_ms, ordinal, id"
        ))
        .bind(subject)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.iter().map(image_row).collect::<Result<Vec<_>, _>>().map(Some)
    }

    /// The newest change number (0 for none).
    pub(crate) async fn last_change(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM changes")
            .fetch_one(&self.pool)
            .await?)
    }

    /// Calls `each` with every stored image, streaming (a large catalogue never sits in memory twice).
    pub(crate) async fn each_image(&self, mut each: impl FnMut(ImageRow)) -> Result<(), StoreError> {
        let sql = format!("SELECT {IMAGE_COLUMNS} FROM images");
        let mut rows = sqlx::query(&sql).fetch(&self.pool);
        while let Some(row) = rows.try_next().await? {
            each(image_row(&row)?);
        }
        Ok(())
    }

    /// Up to `limit` changes after `seq`, in order.
    pub(crate) async fn changes_since(&self, seq: i64, limit: i64) -> Result<Vec<Change>, StoreError> {
        let rows = sqlx::query(
            "SELECT c.seq, c.op, c.image_id AS change_image, c.model AS change_model, \
                    i.id, i.subject_id, i.model, i.weights_sha256, i.embedding, i.created_ms \
             FROM changes c LEFT JOIN images i ON i.id = c.image_id AND c.op = 'add' \
             WHERE c.seq > $1 ORDER BY c.seq LIMIT $2",
        )
        .bind(seq)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let image: String = row.try_get("change_image")?;
                let joined: Option<String> = row.try_get("id")?;
                Ok(Change {
                    seq: row.try_get("seq")?,
                    image: parse_image_id(&image)?,
                    model: row.try_get("change_model")?,
                    added: joined.map(|_| image_row(row)).transpose()?,
                })
            })
            .collect()
    }

    /// Closes every connection (SQLite checkpoints its WAL on the last close).
    pub(crate) async fn close(&self) {
        self.pool.close().await;
    }
}

/// `sqlite:PATH` with the directory created and `mode=rwc` (create the file) unless a mode is given.
fn sqlite_url(url: &str) -> Result<String, StoreError> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or_default();
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if path != ":memory:" {
        if let Some(dir) = Path::new(path).parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Directory {
                path: dir.display().to_string(),
                source,
            })?;
        }
    }
    let query = if query.split('&').any(|kv| kv.starts_with("mode=")) {
        query.to_string()
    } else if query.is_empty() {
        "mode=rwc".to_string()
    } else {
        format!("{query}&mode=rwc")
    };
    Ok(format!("sqlite://{path}?{query}"))
}

fn parse_json(text: Option<&str>) -> Option<serde_json::Value> {
    text.and_then(|t| serde_json::from_str(t).ok())
}

fn subject_row(row: &AnyRow) -> Result<SubjectRow, StoreError> {
    Ok(SubjectRow {
        id: row.try_get("id")?,
        metadata: row.try_get("metadata")?,
        created_ms: row.try_get("created_ms")?,
        updated_ms: row.try_get("updated_ms")?,
        image_count: row.try_get("image_count")?,
    })
}

fn image_row(row: &AnyRow) -> Result<ImageRow, StoreError> {
    let id: String = row.try_get("id")?;
    let bytes: Vec<u8> = row.try_get("embedding")?;
    Ok(ImageRow {
        id: parse_image_id(&id)?,
        subject: row.try_get("subject_id")?,
        model: row.try_get("model")?,
        weights_sha256: row.try_get("weights_sha256")?,
        embedding: from_bytes(&bytes)
            .ok_or_else(|| StoreError::Corrupt(format!("image {id}: embedding of {} bytes", bytes.len())))?,
        created_ms: row.try_get("created_ms")?,
    })
}

pub(super) fn parse_image_id(text: &str) -> Result<ImageId, StoreError> {
    ImageId::parse(text).ok_or_else(|| StoreError::Corrupt(format!("image id {text:?}")))
}

/// f32 little-endian: the same bytes on every machine that reads the store.
pub(crate) fn to_bytes(embedding: &[f32]) -> Vec<u8> {
    embedding.iter().flat_map(|x| x.to_le_bytes()).collect()
}

pub(crate) fn from_bytes(bytes: &[u8]) -> Option<Vec<f32>> {
    if bytes.len() % 4 != 0 {
        return None;
    }
    Some(
        bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embeddings_round_trip_as_little_endian_bytes() {
        let embedding = vec![0.5f32, -1.25, 3.0e-8];

        let bytes = to_bytes(&embedding);

        assert_eq!(&bytes[..4], &0.5f32.to_le_bytes());
        assert_eq!(from_bytes(&bytes), Some(embedding));
        assert_eq!(from_bytes(&bytes[..5]), None);
    }

    #[test]
    fn sqlite_urls_create_files_by_default() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/store.sqlite");
        let url = sqlite_url(&format!("sqlite://{}", path.display())).unwrap();

        assert_eq!(url, format!("sqlite://{}?mode=rwc", path.display()));
        assert!(path.parent().unwrap().is_dir());
        assert_eq!(
            sqlite_url("sqlite::memory:?mode=ro").unwrap(),
            "sqlite://:memory:?mode=ro"
        );
    }

    #[tokio::test]
    async fn a_write_is_there_after_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("s.sqlite").display());
        let store = Store::open(&url).await.unwrap();
        assert!(matches!(
            store.create_subject("alice", Some("{\"a\":1}"), 5).await.unwrap(),
            Created::New(_)
        ));
        let ids = store
            .add_images("alice", "m", "h", &[vec![1.0, 2.0]], None, 6)
            .await
            .unwrap()
            .unwrap();
        assert!(store
            .add_images("bob", "m", "h", &[vec![1.0, 2.0]], None, 6)
            .await
            .unwrap()
            .is_none());
        store.close().await;

        let store = Store::open(&url).await.unwrap();

        let images = store.subject_images("alice").await.unwrap().unwrap();
        assert_eq!(images.len(), 1);
        assert_eq!(images[0].id, ids[0]);
        assert_eq!(images[0].embedding, vec![1.0, 2.0]);
        assert!(matches!(
            store.create_subject("alice", Some("{ \"a\": 1 }"), 7).await.unwrap(),
            Created::Identical(_)
        ));
        assert!(matches!(
            store.create_subject("alice", None, 7).await.unwrap(),
            Created::Conflict
        ));
        let changes = store.changes_since(0, 10).await.unwrap();
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].added.as_ref().map(|r| r.id), Some(ids[0]));
        assert!(store.delete_image("alice", ids[0], 8).await.unwrap());
        assert!(!store.delete_image("alice", ids[0], 8).await.unwrap());
        assert!(store.delete_subject("alice").await.unwrap());
        assert!(!store.delete_subject("alice").await.unwrap());
        let changes = store.changes_since(1, 10).await.unwrap();
        assert_eq!(changes.len(), 1);
        assert!(changes[0].added.is_none());
        assert_eq!(store.last_change().await.unwrap(), 2);
    }
}

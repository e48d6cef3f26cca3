//! The queries of `simverify reindex`: the images a model's current weights did not embed (with their
//! kept bytes, when `--keep-images` kept them), and the swap of their embeddings for new ones.

use sqlx::Row;

use super::db::{parse_image_id, to_bytes, Store, StoreError};
use super::ids::ImageId;

/// An image embedded by other weights than the current ones.
#[derive(Debug)]
pub(crate) struct StaleImage {
    pub(crate) id: ImageId,
    pub(crate) subject: String,
    /// The weights that embedded it: a re-embedding replaces it only if nothing else did meanwhile.
    pub(crate) weights_sha256: String,
    /// The image as enrolled; `None` when it was not kept, and only re-enrolment can refresh it.
    pub(crate) bytes: Option<Vec<u8>>,
}

/// A new embedding for a stale image.
#[derive(Debug)]
pub(crate) struct Reembedded {
    pub(crate) id: ImageId,
    /// The hash it was read with (`StaleImage::weights_sha256`).
    pub(crate) old_sha256: String,
    pub(crate) embedding: Vec<f32>,
}

impl Store {
    /// Up to `limit` of `model`'s images not embedded by `weights_sha256`, in id order after `after`
    /// (a cursor: images left stale, those without bytes, are passed over on the next page).
    pub(crate) async fn stale_images(
        &self,
        model: &str,
        weights_sha256: &str,
        after: Option<ImageId>,
        limit: i64,
    ) -> Result<Vec<StaleImage>, StoreError> {
        let rows = sqlx::query(
            "SELECT i.id, i.subject_id, i.weights_sha256, k.bytes \
             FROM images i LEFT JOIN kept_images k ON k.image_id = i.id \
             WHERE i.model = $1 AND i.weights_sha256 <> $2 AND i.id > $3 ORDER BY i.id LIMIT $4",
        )
        .bind(model)
        .bind(weights_sha256)
        .bind(after.map(|id| id.to_string()).unwrap_or_default())
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let id: String = row.try_get("id")?;
                Ok(StaleImage {
                    id: parse_image_id(&id)?,
                    subject: row.try_get("subject_id")?,
                    weights_sha256: row.try_get("weights_sha256")?,
                    bytes: row.try_get("bytes")?,
                })
            })
            .collect()
    }

    /// Replaces the embeddings of `images` of `model` with ones made by `weights_sha256`, in one
    /// transaction, logging each as a removal and an addition so that every index (this process's and
    /// other replicas') swaps the row. An image deleted or re-embedded meanwhile is left alone. Answers
    /// how many were replaced.
    pub(crate) async fn replace_embeddings(
        &self,
        model: &str,
        weights_sha256: &str,
        images: &[Reembedded],
    ) -> Result<usize, StoreError> {
        let mut tx = self.begin_write().await?;
        let mut replaced = 0;
        for image in images {
            let updated = sqlx::query(
                "UPDATE images SET embedding = $1, weights_sha256 = $2 \
                 WHERE id = $3 AND model = $4 AND weights_sha256 = $5",
            )
            .bind(to_bytes(&image.embedding))
            .bind(weights_sha256)
            .bind(image.id.to_string())
            .bind(model)
            .bind(&image.old_sha256)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if updated == 0 {
                continue;
            }
            for op in ["remove", "add"] {
                sqlx::query("INSERT INTO changes (op, image_id, model) VALUES ($1, $2, $3)")
                    .bind(op)
                    .bind(image.id.to_string())
                    .bind(model)
                    .execute(&mut *tx)
                    .await?;
            }
            replaced += 1;
        }
        tx.commit().await?;
        Ok(replaced)
    }

    /// `(model, images)` for every model with stored images.
    pub(crate) async fn models(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query("SELECT model, COUNT(*) AS images FROM images GROUP BY model ORDER BY model")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("model")?, row.try_get("images")?)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stale_images_come_with_their_kept_bytes_and_are_replaced_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&format!("sqlite://{}", dir.path().join("s.sqlite").display()))
            .await
            .unwrap();
        store.create_subject("s", None, 1).await.unwrap();
        let kept = store
            .add_images("s", "m", "old", &[vec![1.0], vec![2.0]], Some(&[b"png-1", b"png-2"]), 2)
            .await
            .unwrap()
            .unwrap();
        let bare = store
            .add_images("s", "m", "old", &[vec![3.0]], None, 3)
            .await
            .unwrap()
            .unwrap();
        store.add_images("s", "m", "new", &[vec![4.0]], None, 4).await.unwrap();
        let before = store.last_change().await.unwrap();

        let stale = store.stale_images("m", "new", None, 10).await.unwrap();

        assert_eq!(stale.len(), 3);
        let bytes_of = |id: ImageId| stale.iter().find(|s| s.id == id).unwrap().bytes.clone();
        assert_eq!(bytes_of(kept[0]).as_deref(), Some(&b"png-1"[..]));
        assert_eq!(bytes_of(bare[0]), None);
        let page = store.stale_images("m", "new", Some(stale[0].id), 10).await.unwrap();
        assert_eq!(page.len(), 2);

        let new = Reembedded {
            id: kept[0],
            old_sha256: "old".into(),
            embedding: vec![9.0],
        };
        assert_eq!(store.replace_embeddings("m", "new", &[new]).await.unwrap(), 1);
        let again = Reembedded {
            id: kept[0],
            old_sha256: "old".into(),
            embedding: vec![8.0],
        };
        assert_eq!(store.replace_embeddings("m", "new", &[again]).await.unwrap(), 0);

        let images = store.subject_images("s").await.unwrap().unwrap();
        let replaced = images.iter().find(|i| i.id == kept[0]).unwrap();
        assert_eq!(
            (replaced.weights_sha256.as_str(), replaced.embedding.clone()),
            ("new", vec![9.0])
        );
        assert_eq!(store.stale_images("m", "new", None, 10).await.unwrap().len(), 2);
        assert_eq!(store.last_change().await.unwrap(), before + 2);
        assert_eq!(store.models().await.unwrap(), vec![("m".to_string(), 4)]);
        // Deleting the subject takes the kept bytes with it.
        store.delete_subject("s").await.unwrap();
        let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM kept_images")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(left, 0);
    }
}

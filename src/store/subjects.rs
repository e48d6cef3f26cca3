//! The catalogue's subject operations, as the handlers call them: each counts its own store failures
//! (`simverify_store_errors_total{operation}`), and each write then brings the search index up to it, so
//! that the caller's next search sees it.

use super::catalogue::Catalogue;
use super::db::{Created, ImageRow, StoreError, SubjectRow};
use super::ids::ImageId;

impl Catalogue {
    pub(crate) async fn create_subject(
        &self,
        id: &str,
        metadata: Option<&str>,
        now_ms: i64,
    ) -> Result<Created, StoreError> {
        // Creating a subject adds no image: the index has nothing to catch up on.
        self.counted("write", self.store().create_subject(id, metadata, now_ms).await)
    }

    pub(crate) async fn subject(&self, id: &str) -> Result<Option<SubjectRow>, StoreError> {
        self.counted("read", self.store().subject(id).await)
    }

    /// The subject's images, or `None` when there is no such subject.
    pub(crate) async fn subject_images(&self, id: &str) -> Result<Option<Vec<ImageRow>>, StoreError> {
        self.counted("read", self.store().subject_images(id).await)
    }

    /// Up to `limit` subjects whose id sorts after `after`, in id order.
    pub(crate) async fn list_subjects(&self, after: &str, limit: i64) -> Result<Vec<SubjectRow>, StoreError> {
        self.counted("read", self.store().list_subjects(after, limit).await)
    }

    /// Whether there was such a subject.
    pub(crate) async fn delete_subject(&self, id: &str) -> Result<bool, StoreError> {
        let deleted = self.counted("write", self.store().delete_subject(id).await)?;
        self.refresh().await;
        Ok(deleted)
    }

    /// The new images' ids, or `None` when the subject is gone.
    pub(crate) async fn add_images(
        &self,
        subject: &str,
        model: &str,
        weights_sha256: &str,
        embeddings: &[Vec<f32>],
        kept: Option<&[&[u8]]>,
        now_ms: i64,
    ) -> Result<Option<Vec<ImageId>>, StoreError> {
        let added = self
            .store()
            .add_images(subject, model, weights_sha256, embeddings, kept, now_ms)
            .await;
        let added = self.counted("write", added)?;
        self.refresh().await;
        Ok(added)
    }

    /// Whether the subject had such an image.
    pub(crate) async fn delete_image(&self, subject: &str, image: ImageId, now_ms: i64) -> Result<bool, StoreError> {
        let deleted = self.counted("write", self.store().delete_image(subject, image, now_ms).await)?;
        self.refresh().await;
        Ok(deleted)
    }

    /// `result`, its failure counted under `operation`.
    fn counted<T>(&self, operation: &'static str, result: Result<T, StoreError>) -> Result<T, StoreError> {
        if result.is_err() {
            self.count_error(operation);
        }
        result
    }

    /// Brings the index up to the write just committed. The write stands either way: on failure the
    /// follower catches up within its interval.
    async fn refresh(&self) {
        if let Err(err) = self.catch_up().await {
            self.count_error("follow");
            tracing::warn!(error = %err, "the search index could not catch up after a write; the follower will");
        }
    }
}

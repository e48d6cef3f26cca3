//! The catalogue: the store, and the in-memory index that mirrors it, kept current by applying the
//! store's change log in order (after each local write, and every `follow` interval for other replicas'
//! writes). What the HTTP handlers hold.

use std::collections::HashSet;
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use prometheus::core::Collector;
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::db::{Store, StoreError};
use super::index::{Approximate, Hit, Index, SearchQuery, Snapshot};
use crate::metrics::Metrics;

/// Changes read per query while catching up.
const CHANGE_BATCH: i64 = 10_000;

pub(crate) struct Catalogue {
    store: Store,
    /// Read by every search at once; written briefly while changes apply.
    index: RwLock<Index>,
    /// The last change applied to the index. Held across a whole catch-up, so that changes apply one
    /// batch at a time, in order, whoever triggers them.
    applied: Mutex<i64>,
    metrics: Metrics,
}

/// A model's stored embeddings include some made by other weights than the loaded ones: comparing them
/// with new embeddings would be meaningless, so the caller is told to re-enrol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StaleEmbeddings {
    pub(crate) model: String,
    /// Embeddings made by other weights.
    pub(crate) stale: usize,
    /// All embeddings of the model (or subject) asked about.
    pub(crate) total: usize,
}

/// Why a search was not answered.
#[derive(Debug)]
pub(crate) enum SearchRefusal {
    Stale(StaleEmbeddings),
    /// The query's length is not the stored embeddings' (a broken invariant: same weights, same length).
    Shape(String),
}

impl Catalogue {
    /// Loads every embedding of an opened store into the index and applies the changes made meanwhile.
    /// (Opening is separate, and done before serving, so that a bad store stops the start at once while
    /// a large index still loads behind `/ready`.)
    /// Large sets get an approximate index as `approximate` says.
    pub(crate) async fn load(
        store: Store,
        metrics: Metrics,
        approximate: Approximate,
    ) -> Result<Arc<Catalogue>, StoreError> {
        let started = Instant::now();
        // Read before the images: anything committed from here on is replayed by `catch_up`; replaying
        // a change the load already saw is harmless (adds and removals are idempotent).
        let applied = store.last_change().await?;
        let mut index = Index::new(approximate);
        let mut loaded = 0usize;
        store
            .each_image(|row| {
                let id = row.id;
                match index.add(row) {
                    Ok(()) => loaded += 1,
                    Err(reason) => tracing::warn!(image = %id, %reason, "skipping a stored embedding"),
                }
            })
            .await?;
        index.shrink();
        index.index_large_sets();
        let catalogue = Arc::new(Catalogue {
            store,
            index: RwLock::new(index),
            applied: Mutex::new(applied),
            metrics,
        });
        catalogue.catch_up().await?;
        catalogue.publish_counts();
        tracing::info!(
            images = loaded,
            seconds = started.elapsed().as_secs_f64(),
            "subject catalogue loaded"
        );
        Ok(catalogue)
    }

    pub(crate) fn store(&self) -> &Store {
        &self.store
    }

    /// Applies every change not yet applied; answers how many.
    pub(crate) async fn catch_up(&self) -> Result<usize, StoreError> {
        let mut applied = self.applied.lock().await;
        let mut count = 0;
        loop {
            let changes = self.store.changes_since(*applied, CHANGE_BATCH).await?;
            let fetched = changes.len();
            {
                let mut index = self
                    .index
                    .write()
                    .expect("the index lock is never poisoned; this is a bug");
                for change in changes {
                    match change.added {
                        Some(row) => {
                            let id = row.id;
                            if let Err(reason) = index.add(row) {
                                tracing::warn!(image = %id, %reason, "skipping a stored embedding");
                            }
                        }
                        None => index.remove(&change.model, change.image),
                    }
                    *applied = change.seq;
                }
                index.index_large_sets();
            }
            count += fetched;
            if (fetched as i64) < CHANGE_BATCH {
                break;
            }
        }
        if count > 0 {
            self.publish_counts();
        }
        Ok(count)
    }

    /// Catches up every `every` for as long as the catalogue is in use, so that writes of other
    /// processes sharing the store reach this index.
    pub(crate) fn follow(self: &Arc<Self>, every: Duration) {
        let weak: Weak<Catalogue> = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(catalogue) = weak.upgrade() else { break };
                if let Err(err) = catalogue.catch_up().await {
                    catalogue.count_error("follow");
                    tracing::warn!(error = %err, "cannot read the store's changes; retrying");
                }
            }
        });
    }

    /// The `k` nearest images to `vector` among `model`'s, made by `weights` (the loaded model's).
    /// Blocking (a full scan): call it from the blocking pool.
    pub(crate) fn search(
        &self,
        model: &str,
        weights: &str,
        vector: &[f32],
        k: usize,
        subjects: Option<&HashSet<String>>,
    ) -> Result<Vec<Hit>, SearchRefusal> {
        let timer = self.metrics.search_duration_seconds.start_timer();
        let index = self
            .index
            .read()
            .expect("the index lock is never poisoned; this is a bug");
        if let Some(stale) = stale(model, weights, index.counts(model)) {
            timer.stop_and_discard();
            return Err(SearchRefusal::Stale(stale));
        }
        let hits = index
            .search(model, weights, &SearchQuery { vector, k, subjects })
            .map_err(SearchRefusal::Shape)?;
        drop(index);
        timer.observe_duration();
        Ok(hits)
    }

    /// A copy of `model`'s embeddings made by `weights` (only `subjects`' when given), in image-id order:
    /// what a duplicate search reads. Refused as `search` is while some were made by other weights.
    pub(crate) fn embeddings(
        &self,
        model: &str,
        weights: &str,
        subjects: Option<&HashSet<String>>,
    ) -> Result<Snapshot, SearchRefusal> {
        let index = self
            .index
            .read()
            .expect("the index lock is never poisoned; this is a bug");
        if let Some(stale) = stale(model, weights, index.counts(model)) {
            return Err(SearchRefusal::Stale(stale));
        }
        Ok(index.snapshot(model, weights, subjects))
    }

    /// Counts a failed store operation (`open`, `read`, `write`, `follow`).
    pub(crate) fn count_error(&self, operation: &'static str) {
        self.metrics.store_errors_total.with_label_values(&[operation]).inc();
    }

    fn publish_counts(&self) {
        let totals = self
            .index
            .read()
            .expect("the index lock is never poisoned; this is a bug")
            .totals();
        let gauge = &self.metrics.enrolled_images;
        // A model whose last image went must read 0, not its old count, and a loaded model with no image
        // yet keeps the 0 it started at (see `Metrics::serve_models`).
        for family in gauge.collect() {
            for series in family.get_metric() {
                let model = series.get_label()[0].value();
                if !totals.iter().any(|(m, _)| m == model) {
                    gauge.with_label_values(&[model]).set(0);
                }
            }
        }
        for (model, count) in totals {
            gauge.with_label_values(&[model.as_str()]).set(count as i64);
        }
    }
}

/// Whether `model`'s embeddings, counted per weights hash, include some not made by `weights`.
pub(crate) fn stale(model: &str, weights: &str, counts: Vec<(String, usize)>) -> Option<StaleEmbeddings> {
    let total: usize = counts.iter().map(|(_, n)| n).sum();
    let stale: usize = counts.iter().filter(|(hash, _)| hash != weights).map(|(_, n)| n).sum();
    (stale > 0).then(|| StaleEmbeddings {
        model: model.to_string(),
        stale,
        total,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embeddings_of_other_weights_are_stale() {
        assert_eq!(stale("m", "new", vec![("new".into(), 3)]), None);
        assert_eq!(stale("m", "new", vec![]), None);
        assert_eq!(
            stale("m", "new", vec![("new".into(), 3), ("old".into(), 2)]),
            Some(StaleEmbeddings {
                model: "m".into(),
                stale: 2,
                total: 5
            })
        );
    }

    #[tokio::test]
    async fn a_second_catalogue_on_the_same_file_follows_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("c.sqlite").display());
        let writer = Catalogue::load(Store::open(&url).await.unwrap(), Metrics::new(), Approximate::default())
            .await
            .unwrap();
        let reader = Catalogue::load(Store::open(&url).await.unwrap(), Metrics::new(), Approximate::default())
            .await
            .unwrap();
        writer.store().create_subject("s", None, 1).await.unwrap();

        let ids = writer
            .store()
            .add_images("s", "m", "h", &[vec![0.0, 1.0], vec![5.0, 5.0]], None, 2)
            .await
            .unwrap()
            .unwrap();
        writer.catch_up().await.unwrap();
        assert_eq!(reader.catch_up().await.unwrap(), 2);
        assert_eq!(reader.metrics.enrolled_images.with_label_values(&["m"]).get(), 2);

        let hits = reader.search("m", "h", &[0.0, 0.9], 1, None).unwrap();
        assert_eq!(hits[0].image, ids[0]);
        assert!(matches!(
            reader.search("m", "other", &[0.0, 0.9], 1, None),
            Err(SearchRefusal::Stale(StaleEmbeddings { stale: 2, .. }))
        ));
        writer.store().delete_subject("s").await.unwrap();
        reader.catch_up().await.unwrap();
        assert!(reader.search("m", "h", &[0.0, 0.9], 1, None).unwrap().is_empty());
        assert_eq!(reader.metrics.enrolled_images.with_label_values(&["m"]).get(), 0);
    }
}

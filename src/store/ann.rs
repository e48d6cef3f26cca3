//! The approximate nearest-neighbour index: an HNSW graph (USearch) over squared Euclidean distances,
//! for the catalogue's sets too large to scan for every `/search`.
//!
//! USearch was chosen over the pure-Rust HNSW crates because it adds and removes single vectors after
//! the build (the catalogue changes one enrolment at a time), builds on several threads at once, and
//! filters during the search (the subject filter of `/search`); its recall and speed against the exact
//! scan are measured by `scripts/bench-search`.

use std::fmt;

use usearch::{Index, IndexOptions, MetricKind, ScalarKind};

/// Graph degree: USearch's default.
const CONNECTIVITY: usize = 16;

/// Candidates kept while inserting: more builds a better graph, more slowly.
const EXPANSION_ADD: usize = 128;

/// Candidates kept while searching (USearch keeps `k` when `k` is larger).
const EXPANSION_SEARCH: usize = 64;

/// Searches that may run at once: each needs its own scratch space in the index.
const SEARCH_THREADS: usize = 64;

/// An HNSW index over vectors of one length, keyed by the caller's `u64` keys.
pub(crate) struct Ann {
    index: Index,
    dim: usize,
}

/// What USearch refused (out of memory, a wrong length): the callers fall back to the exact scan.
#[derive(Debug)]
pub(crate) struct AnnError(String);

impl fmt::Display for AnnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "approximate index: {}", self.0)
    }
}

impl std::error::Error for AnnError {}

fn failed(err: impl fmt::Display) -> AnnError {
    AnnError(err.to_string())
}

impl Ann {
    /// An empty index for vectors of `dim` floats, with room for `capacity` of them.
    pub(crate) fn new(dim: usize, capacity: usize) -> Result<Self, AnnError> {
        let options = IndexOptions {
            dimensions: dim,
            metric: MetricKind::L2sq,
            // Full precision: half precision would halve the copy the index keeps, but without the SIMD
            // kernels (see Cargo.toml) each f16 is converted in software, and a million-vector build spent
            // 85% of its time there (over 15 minutes on 2 cores, against minutes at f32).
            quantization: ScalarKind::F32,
            connectivity: CONNECTIVITY,
            expansion_add: EXPANSION_ADD,
            expansion_search: EXPANSION_SEARCH,
            multi: false,
        };
        let index = Index::new(&options).map_err(failed)?;
        let threads = SEARCH_THREADS.max(std::thread::available_parallelism().map_or(1, |t| t.get()));
        index
            .reserve_capacity_and_threads(capacity.max(16), threads)
            .map_err(failed)?;
        Ok(Self { index, dim })
    }

    /// An index of `rows` (row `i` at `i * dim`, keyed `i`), built on every core.
    pub(crate) fn build(dim: usize, rows: &[f32]) -> Result<Self, AnnError> {
        let n = rows.len() / dim;
        let ann = Self::new(dim, n)?;
        let threads = std::thread::available_parallelism()
            .map_or(1, |t| t.get())
            .min(n.max(1));
        std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads)
                .map(|t| {
                    let ann = &ann;
                    scope.spawn(move || {
                        (t..n)
                            .step_by(threads)
                            .try_for_each(|i| ann.add(i as u64, &rows[i * dim..(i + 1) * dim]))
                    })
                })
                .collect();
            workers
                .into_iter()
                .try_for_each(|w| w.join().expect("an index build thread does not panic; this is a bug"))
        })?;
        Ok(ann)
    }

    /// Adds `vector` under `key` (growing the index when full).
    pub(crate) fn add(&self, key: u64, vector: &[f32]) -> Result<(), AnnError> {
        if vector.len() != self.dim {
            return Err(AnnError(format!(
                "{} floats where the index holds {}",
                vector.len(),
                self.dim
            )));
        }
        let size = self.index.size();
        if size >= self.index.capacity() {
            // Adds from several threads only happen in `build`, which reserved the room first.
            self.index.reserve(size * 2).map_err(failed)?;
        }
        self.index.add(key, vector).map_err(failed)
    }

    /// Removes `key` if present.
    pub(crate) fn remove(&self, key: u64) -> Result<(), AnnError> {
        self.index.remove(key).map(drop).map_err(failed)
    }

    /// Files the vector of `from` under `to` (which must be free).
    pub(crate) fn rename(&self, from: u64, to: u64) -> Result<(), AnnError> {
        self.index.rename(from, to).map(drop).map_err(failed)
    }

    /// Up to `k` nearest keys with their squared distances, nearest first, among the keys `keep` accepts.
    pub(crate) fn search(
        &self,
        query: &[f32],
        k: usize,
        keep: impl Fn(u64) -> bool,
    ) -> Result<Vec<(u64, f32)>, AnnError> {
        if query.len() != self.dim {
            return Err(AnnError(format!(
                "{} floats where the index holds {}",
                query.len(),
                self.dim
            )));
        }
        let found = self.index.filtered_search(query, k, keep).map_err(failed)?;
        Ok(found.keys.into_iter().zip(found.distances).collect())
    }

    /// Vectors held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.index.size()
    }

    /// Bytes the index holds (graph and vectors).
    pub(crate) fn memory(&self) -> usize {
        self.index.memory_usage()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_added_vectors_and_forgets_removed_ones() {
        let rows: Vec<f32> = (0..200).flat_map(|i| [i as f32, (i % 7) as f32]).collect();
        let ann = Ann::build(2, &rows).unwrap();

        let hits = ann.search(&[50.2, 1.0], 3, |_| true).unwrap();

        assert_eq!(hits[0].0, 50);
        assert!((hits[0].1 - 0.04).abs() < 1e-4, "squared distance: {}", hits[0].1);
        ann.remove(50).unwrap();
        let hits = ann.search(&[50.2, 1.0], 1, |_| true).unwrap();
        assert_ne!(hits[0].0, 50);
        let odd = ann.search(&[50.2, 1.0], 1, |key| key % 2 == 1).unwrap();
        assert_eq!(odd[0].0 % 2, 1);
        assert!(ann.add(999, &[1.0]).is_err(), "a wrong length is refused");
        ann.rename(199, 50).unwrap();
        assert_eq!(ann.search(&[199.0, 3.0], 1, |_| true).unwrap()[0].0, 50);
        assert_eq!(ann.len(), 199);
    }
}

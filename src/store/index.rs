//! The in-memory index: per (model, weights), every enrolled embedding in one contiguous `Vec<f32>`,
//! scanned in full for each search with a lane-parallel distance loop the compiler turns into SIMD; a set
//! of `ANN_FROM` images or more also gets k-means cells (`cells.rs`), which answer the searches without
//! a subject filter by measuring a few cells' rows only; its rows are then laid out cell by cell, so those
//! rows are read as a few runs of memory.
//!
//! Memory per image: the vector itself, plus 16 bytes of image id, a subject handle (shared by the
//! subject's images) and a position-map entry; removal swaps the last row into the hole, so rows stay
//! contiguous and no tombstones pile up.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::sync::Arc;

use super::cells::{Cells, ANN_PROBES};
use super::db::ImageRow;
use super::ids::ImageId;
use crate::model::distance::{from_squared, squared_euclidean};

/// Below this many floats a scan stays on one thread: spawning costs more than it saves.
const PARALLEL_FLOATS: usize = 1 << 21;

/// Images from which a set also gets an approximate index: there, on two cores, the exact scan of 256-d
/// vectors takes 9 ms a search and the cells 3 ms, finding every planted near-copy the scan finds
/// (`scripts/bench-search` measures both); below it the scan answers in a few milliseconds, exactly.
pub(crate) const ANN_FROM: usize = 250_000;

/// When a set gets k-means cells, and how many of them a search measures.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Approximate {
    /// Sets of this many images or more get cells.
    pub(crate) from_images: usize,
    /// Cells a search looks into, nearest the query first.
    pub(crate) probes: usize,
}

impl Default for Approximate {
    fn default() -> Self {
        Self {
            from_images: ANN_FROM,
            probes: ANN_PROBES,
        }
    }
}

/// Every model's rows, keyed by model name, then by the weights hash that made them.
pub(crate) struct Index {
    models: HashMap<String, HashMap<String, Rows>>,
    /// Subject ids, shared by every row of a subject.
    subjects: HashMap<Arc<str>, usize>,
    approximate: Approximate,
    /// Cores a large search is shared between, asked once: on Linux the answer reads cgroup files.
    threads: usize,
}

impl Default for Index {
    fn default() -> Self {
        Self::new(Approximate::default())
    }
}

impl Index {
    /// An empty index whose large sets get cells as `approximate` says.
    pub(crate) fn new(approximate: Approximate) -> Self {
        Self {
            models: HashMap::new(),
            subjects: HashMap::new(),
            approximate,
            threads: std::thread::available_parallelism().map_or(1, |t| t.get()),
        }
    }
}

/// One (model, weights) set of embeddings.
struct Rows {
    dim: usize,
    /// `ids.len() * dim` floats, row `i` at `i * dim`.
    data: Vec<f32>,
    ids: Vec<ImageId>,
    subjects: Vec<Arc<str>>,
    position: HashMap<ImageId, usize>,
    /// The approximate index of a large set, keyed by row number (kept so through swap-removals).
    cells: Option<Cells>,
}

/// A search: the query vector, how many answers, and an optional subject filter.
pub(crate) struct SearchQuery<'a> {
    pub(crate) vector: &'a [f32],
    pub(crate) k: usize,
    /// Only images of these subjects; all when `None`.
    pub(crate) subjects: Option<&'a HashSet<String>>,
}

/// One search answer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Hit {
    pub(crate) subject: Arc<str>,
    pub(crate) image: ImageId,
    /// Euclidean, as everywhere else in the service.
    pub(crate) distance: f32,
}

impl Index {
    /// Adds an image (a repeat of one already there is ignored: changes may be applied twice).
    /// An embedding whose length differs from its set's is refused, as a corrupt row.
    pub(crate) fn add(&mut self, row: ImageRow) -> Result<(), String> {
        let rows = self
            .models
            .entry(row.model)
            .or_default()
            .entry(row.weights_sha256)
            .or_insert_with(|| Rows::new(row.embedding.len()));
        if rows.position.contains_key(&row.id) {
            return Ok(());
        }
        if row.embedding.len() != rows.dim {
            return Err(format!(
                "image {} has {} dimensions where its model's others have {}",
                row.id,
                row.embedding.len(),
                rows.dim
            ));
        }
        rows.position.insert(row.id, rows.ids.len());
        if let Some(cells) = &mut rows.cells {
            cells.push(&row.embedding);
        }
        rows.ids.push(row.id);
        rows.subjects.push(intern(&mut self.subjects, &row.subject));
        rows.data.extend_from_slice(&row.embedding);
        Ok(())
    }

    /// Builds the approximate index of every set that has grown to `from_images` without one (after
    /// the bulk load, and after changes apply: one build rather than one add at a time).
    pub(crate) fn index_large_sets(&mut self) {
        for (model, sets) in &mut self.models {
            for rows in sets
                .values_mut()
                .filter(|r| r.cells.is_none() && r.ids.len() >= self.approximate.from_images)
            {
                let started = std::time::Instant::now();
                match Cells::build(rows.dim, &rows.data) {
                    Ok((cells, order)) => {
                        rows.reorder(&order);
                        tracing::info!(
                            %model,
                            images = rows.ids.len(),
                            bytes = cells.memory(),
                            seconds = started.elapsed().as_secs_f64(),
                            "approximate index built"
                        );
                        rows.cells = Some(cells);
                    }
                    Err(err) => tracing::warn!(%model, %err, "no approximate index; searches scan"),
                }
            }
        }
    }

    /// Removes an image if present.
    pub(crate) fn remove(&mut self, model: &str, image: ImageId) {
        let Some(sets) = self.models.get_mut(model) else { return };
        let mut released = None;
        for rows in sets.values_mut() {
            if let Some(subject) = rows.remove(image) {
                released = Some(subject);
                break;
            }
        }
        sets.retain(|_, rows| !rows.ids.is_empty());
        if sets.is_empty() {
            self.models.remove(model);
        }
        if let Some(subject) = released {
            release(&mut self.subjects, &subject);
        }
    }

    /// Gives memory back after a bulk load (vectors grow by doubling).
    pub(crate) fn shrink(&mut self) {
        for rows in self.models.values_mut().flat_map(HashMap::values_mut) {
            rows.data.shrink_to_fit();
            rows.ids.shrink_to_fit();
            rows.subjects.shrink_to_fit();
        }
    }

    /// Images of `model`, per weights hash.
    pub(crate) fn counts(&self, model: &str) -> Vec<(String, usize)> {
        self.models
            .get(model)
            .map(|sets| sets.iter().map(|(hash, rows)| (hash.clone(), rows.ids.len())).collect())
            .unwrap_or_default()
    }

    /// Every model with images, and how many.
    pub(crate) fn totals(&self) -> Vec<(String, usize)> {
        self.models
            .iter()
            .map(|(model, sets)| (model.clone(), sets.values().map(|r| r.ids.len()).sum()))
            .collect()
    }

    /// The `k` nearest images of (`model`, `weights`), nearest first (ties by image id, so that answers
    /// are repeatable). Empty when nothing is enrolled; refused when the query's length is not the rows'.
    pub(crate) fn search(&self, model: &str, weights: &str, query: &SearchQuery<'_>) -> Result<Vec<Hit>, String> {
        let Some(rows) = self.models.get(model).and_then(|sets| sets.get(weights)) else {
            return Ok(Vec::new());
        };
        if query.vector.len() != rows.dim {
            return Err(format!(
                "the query has {} dimensions, the enrolled embeddings {}",
                query.vector.len(),
                rows.dim
            ));
        }
        Ok(rows.search(query, self.approximate.probes, self.threads))
    }
}

/// A copy of one (model, weights) set's rows in image-id order (the same catalogue, the same order):
/// what a duplicate search reads.
pub(crate) struct Snapshot {
    pub(crate) dim: usize,
    pub(crate) rows: Vec<f32>,
    pub(crate) images: Vec<(ImageId, Arc<str>)>,
}

impl Index {
    /// The rows of (`model`, `weights`), only `subjects`' when given; empty when there are none.
    pub(crate) fn snapshot(&self, model: &str, weights: &str, subjects: Option<&HashSet<String>>) -> Snapshot {
        let Some(rows) = self.models.get(model).and_then(|sets| sets.get(weights)) else {
            return Snapshot {
                dim: 0,
                rows: Vec::new(),
                images: Vec::new(),
            };
        };
        let mut order: Vec<usize> = (0..rows.ids.len())
            .filter(|&i| subjects.is_none_or(|wanted| wanted.contains(&*rows.subjects[i])))
            .collect();
        order.sort_by_key(|&i| rows.ids[i]);
        Snapshot {
            dim: rows.dim,
            rows: order
                .iter()
                .flat_map(|&i| rows.data[i * rows.dim..(i + 1) * rows.dim].iter().copied())
                .collect(),
            images: order
                .iter()
                .map(|&i| (rows.ids[i], Arc::clone(&rows.subjects[i])))
                .collect(),
        }
    }
}

/// The shared handle of `subject`, counting one more row that holds it.
fn intern(subjects: &mut HashMap<Arc<str>, usize>, subject: &str) -> Arc<str> {
    if let Some((shared, count)) = subjects.get_key_value(subject).map(|(k, v)| (Arc::clone(k), *v)) {
        subjects.insert(Arc::clone(&shared), count + 1);
        return shared;
    }
    let shared: Arc<str> = Arc::from(subject);
    subjects.insert(Arc::clone(&shared), 1);
    shared
}

/// One row fewer holds `subject`; the handle goes with the last.
fn release(subjects: &mut HashMap<Arc<str>, usize>, subject: &Arc<str>) {
    if let Some(count) = subjects.get_mut(subject) {
        *count -= 1;
        if *count == 0 {
            subjects.remove(subject);
        }
    }
}

impl Rows {
    fn new(dim: usize) -> Self {
        Self {
            dim,
            data: Vec::new(),
            ids: Vec::new(),
            subjects: Vec::new(),
            position: HashMap::new(),
            cells: None,
        }
    }

    /// Swap-removes `image`; answers its subject when it was there.
    fn remove(&mut self, image: ImageId) -> Option<Arc<str>> {
        let at = self.position.remove(&image)?;
        let last = self.ids.len() - 1;
        if let Some(cells) = &mut self.cells {
            cells.swap_remove(at);
        }
        if at != last {
            let moved = self.ids[last];
            self.data
                .copy_within(last * self.dim..(last + 1) * self.dim, at * self.dim);
            self.position.insert(moved, at);
        }
        self.data.truncate(last * self.dim);
        self.ids.swap_remove(at);
        Some(self.subjects.swap_remove(at))
    }

    /// Moves the rows into `order` (new row `i` is old row `order[i]`, a permutation), in place: cycle
    /// by cycle, with swaps, so that a million rows need no second copy of their floats.
    fn reorder(&mut self, order: &[usize]) {
        let mut placed = vec![false; order.len()];
        for start in 0..order.len() {
            let mut at = start;
            while !placed[at] {
                placed[at] = true;
                let from = order[at];
                if from == start {
                    break;
                }
                self.swap_rows(at, from);
                at = from;
            }
        }
        for (row, id) in self.ids.iter().enumerate() {
            self.position.insert(*id, row);
        }
    }

    fn swap_rows(&mut self, a: usize, b: usize) {
        let (low, high) = (a.min(b), a.max(b));
        let (head, tail) = self.data.split_at_mut(high * self.dim);
        head[low * self.dim..(low + 1) * self.dim].swap_with_slice(&mut tail[..self.dim]);
        self.ids.swap(a, b);
        self.subjects.swap(a, b);
    }

    fn search(&self, query: &SearchQuery<'_>, probes: usize, threads: usize) -> Vec<Hit> {
        let n = self.ids.len();
        let k = query.k.min(n);
        if k == 0 {
            return Vec::new();
        }
        let threads_for = |rows: usize| if rows * self.dim < PARALLEL_FLOATS { 1 } else { threads };
        let best = if let (Some(cells), None) = (&self.cells, query.subjects) {
            let lists = cells.candidates(query.vector, probes);
            let parts = threads_for(lists.iter().map(|l| l.len()).sum());
            // Cells dealt out in turn, nearest first, so that the threads get about as many rows each.
            self.best_of(query, k, parts, |part| {
                lists
                    .iter()
                    .skip(part)
                    .step_by(parts)
                    .flat_map(|l| l.iter().map(|&r| r as usize))
            })
        } else {
            let parts = threads_for(n);
            let chunk = n.div_ceil(parts);
            self.best_of(query, k, parts, |part| {
                (part * chunk).min(n)..((part + 1) * chunk).min(n)
            })
        };
        self.hits(best)
    }

    /// The best `k` of the rows `part(0)`, ..., `part(parts - 1)` give, one thread a part (unsorted).
    fn best_of<I>(
        &self,
        query: &SearchQuery<'_>,
        k: usize,
        parts: usize,
        part: impl Fn(usize) -> I + Sync,
    ) -> Vec<Candidate>
    where
        I: Iterator<Item = usize>,
    {
        if parts == 1 {
            return self.top_k(query, part(0), k);
        }
        let mut heaps = Vec::new();
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..parts)
                .map(|p| {
                    let part = &part;
                    scope.spawn(move || self.top_k(query, part(p), k))
                })
                .collect();
            for handle in handles {
                heaps.push(handle.join().expect("a search thread does not panic; this is a bug"));
            }
        });
        let mut merged = BinaryHeap::with_capacity(k + 1);
        for candidate in heaps.into_iter().flatten() {
            push_bounded(&mut merged, candidate, k);
        }
        merged.into_vec()
    }

    /// Candidates as answers, nearest first.
    fn hits(&self, mut best: Vec<Candidate>) -> Vec<Hit> {
        best.sort_unstable();
        best.into_iter()
            .map(|Candidate { squared, image, row }| Hit {
                subject: Arc::clone(&self.subjects[row]),
                image,
                distance: from_squared(squared),
            })
            .collect()
    }

    /// The best `k` of `rows` (unsorted).
    fn top_k(&self, query: &SearchQuery<'_>, rows: impl Iterator<Item = usize>, k: usize) -> Vec<Candidate> {
        let mut heap = BinaryHeap::with_capacity(k + 1);
        for at in rows {
            if let Some(filter) = query.subjects {
                if !filter.contains(&*self.subjects[at]) {
                    continue;
                }
            }
            let squared = squared_euclidean(&self.data[at * self.dim..(at + 1) * self.dim], query.vector);
            // Cheap rejection before building a candidate: most rows are not among the best k.
            if heap.len() == k && heap.peek().is_some_and(|worst: &Candidate| squared > worst.squared) {
                continue;
            }
            let candidate = Candidate {
                squared,
                image: self.ids[at],
                row: at,
            };
            push_bounded(&mut heap, candidate, k);
        }
        heap.into_vec()
    }
}

/// Keeps the `k` smallest in a max-heap.
fn push_bounded(heap: &mut BinaryHeap<Candidate>, candidate: Candidate, k: usize) {
    heap.push(candidate);
    if heap.len() > k {
        heap.pop();
    }
}

/// Ordered by distance, then image id: a total order, so the heap and the final sort agree.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    squared: f32,
    image: ImageId,
    row: usize,
}

impl PartialEq for Candidate {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Candidate {}

impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Candidate {
    fn cmp(&self, other: &Self) -> Ordering {
        self.squared
            .total_cmp(&other.squared)
            .then_with(|| self.image.cmp(&other.image))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: u128, subject: &str, embedding: Vec<f32>) -> ImageRow {
        ImageRow {
            id: ImageId(id),
            subject: subject.into(),
            model: "m".into(),
            weights_sha256: "h".into(),
            embedding,
            created_ms: 0,
        }
    }

    fn query(vector: &[f32], k: usize) -> SearchQuery<'_> {
        SearchQuery {
            vector,
            k,
            subjects: None,
        }
    }

    #[test]
    fn nearest_first_with_subjects_and_k() {
        let mut index = Index::default();
        index.add(row(1, "far", vec![3.0, 0.0])).unwrap();
        index.add(row(2, "near", vec![0.1, 0.0])).unwrap();
        index.add(row(3, "mid", vec![1.0, 0.0])).unwrap();

        let hits = index.search("m", "h", &query(&[0.0, 0.0], 2)).unwrap();

        assert_eq!(hits.len(), 2);
        assert_eq!((&*hits[0].subject, hits[0].image), ("near", ImageId(2)));
        assert!((hits[0].distance - 0.1).abs() < 1e-6);
        assert_eq!(&*hits[1].subject, "mid");
        assert!(index.search("m", "other", &query(&[0.0, 0.0], 2)).unwrap().is_empty());
        assert!(index.search("m", "h", &query(&[0.0], 2)).is_err());
    }

    #[test]
    fn removal_keeps_rows_contiguous_and_adds_are_idempotent() {
        let mut index = Index::default();
        for i in 0..5u128 {
            index.add(row(i, &format!("s{i}"), vec![i as f32, 0.0])).unwrap();
        }
        index.add(row(4, "s4", vec![4.0, 0.0])).unwrap();

        index.remove("m", ImageId(1));
        index.remove("m", ImageId(1));

        assert_eq!(index.counts("m"), vec![("h".to_string(), 4)]);
        let hits = index.search("m", "h", &query(&[4.0, 0.0], 10)).unwrap();
        let order: Vec<u128> = hits.iter().map(|h| h.image.0).collect();
        assert_eq!(order, vec![4, 3, 2, 0]);
        assert!(
            !index.subjects.contains_key("s1"),
            "a removed subject's handle is released"
        );
        for i in [0u128, 2, 3, 4] {
            index.remove("m", ImageId(i));
        }
        assert!(index.totals().is_empty());
        assert!(index.subjects.is_empty());
    }

    #[test]
    fn a_subject_filter_only_sees_those_subjects() {
        let mut index = Index::default();
        index.add(row(1, "a", vec![0.0])).unwrap();
        index.add(row(2, "b", vec![1.0])).unwrap();
        let only_b: HashSet<String> = ["b".to_string()].into();

        let hits = index
            .search(
                "m",
                "h",
                &SearchQuery {
                    vector: &[0.0],
                    k: 5,
                    subjects: Some(&only_b),
                },
            )
            .unwrap();

        assert_eq!(hits.len(), 1);
        assert_eq!(&*hits[0].subject, "b");
    }

    #[test]
    fn the_approximate_index_finds_the_near_copies_the_scan_finds_through_adds_and_removals() {
        let (dim, n) = (16, 3000);
        let mut state = 7u64;
        let mut next = || {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            (state >> 40) as f32 / (1u64 << 24) as f32
        };
        let vectors: Vec<Vec<f32>> = (0..n).map(|_| (0..dim).map(|_| next()).collect()).collect();
        // Every 10th vector has three near copies (each coordinate moved by at most 0.01): what a search for
        // duplicates looks for. Half are enrolled before the index is built, half after.
        let copies: Vec<Vec<f32>> = vectors
            .iter()
            .step_by(10)
            .flat_map(|v| {
                (0..3)
                    .map(|_| v.iter().map(|x| x + (next() - 0.5) * 0.02).collect::<Vec<_>>())
                    .collect::<Vec<_>>()
            })
            .collect();
        let mut exact = Index::default();
        // About 59 cells; 16 a search, so that most of the set goes unread.
        let mut approximate = Index::new(Approximate {
            from_images: 1000,
            probes: 16,
        });
        let (before, after) = copies.split_at(copies.len() / 2);
        let enrol = |index: &mut Index, rows: &[Vec<f32>], first: usize| {
            for (i, v) in rows.iter().enumerate() {
                index.add(row((first + i) as u128, "s", v.clone())).unwrap();
            }
        };
        for index in [&mut exact, &mut approximate] {
            enrol(index, &vectors, 0);
            enrol(index, before, n);
        }
        approximate.index_large_sets();
        for index in [&mut exact, &mut approximate] {
            enrol(index, after, n + before.len());
            for i in (0..n + copies.len()).step_by(7) {
                index.remove("m", ImageId(i as u128));
            }
        }
        assert!(
            approximate.models["m"]["h"].cells.is_some(),
            "adds and removals keep the index"
        );

        let (mut found, mut wanted) = (0, 0);
        for q in vectors.iter().step_by(10) {
            let near: HashSet<ImageId> = exact
                .search("m", "h", &query(q, 10))
                .unwrap()
                .iter()
                .filter(|h| h.distance < 0.05)
                .map(|h| h.image)
                .collect();
            let answer = approximate.search("m", "h", &query(q, 10)).unwrap();
            found += answer.iter().filter(|h| near.contains(&h.image)).count();
            wanted += near.len();
        }
        assert!(wanted > 600, "the copies are the near answers: {wanted}");
        let recall = found as f64 / wanted as f64;
        assert!(
            recall >= 0.99,
            "recall of the near copies against the exact scan: {recall}"
        );
    }

    #[test]
    fn filing_rows_in_cell_order_keeps_every_image_with_its_vector() {
        let mut index = Index::new(Approximate {
            from_images: 100,
            probes: 1,
        });
        let vector = |i: u128| vec![(i % 17) as f32, (i / 17) as f32, (i * 7 % 5) as f32];
        for i in 0..400u128 {
            index.add(row(i, &format!("s{i}"), vector(i))).unwrap();
        }
        index.index_large_sets();
        for i in (0..400u128).step_by(3) {
            index.remove("m", ImageId(i));
        }

        for i in 0..400u128 {
            let only: HashSet<String> = [format!("s{i}")].into();
            let hits = index
                .search(
                    "m",
                    "h",
                    &SearchQuery {
                        vector: &vector(i),
                        k: 1,
                        subjects: Some(&only),
                    },
                )
                .unwrap();
            if i % 3 == 0 {
                assert!(hits.is_empty(), "image {i} was removed");
            } else {
                assert_eq!(hits[0].image, ImageId(i));
                assert!(hits[0].distance < 1e-3, "its own vector: {}", hits[0].distance);
            }
        }
    }

    #[test]
    fn the_parallel_scan_and_every_cell_probed_agree_with_a_sort() {
        let dim = 16;
        let n = PARALLEL_FLOATS / dim + 1000;
        let mut index = Index::new(Approximate {
            from_images: 1,
            probes: 65_536,
        });
        let mut state = 1u64;
        let mut next = || {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            (state >> 40) as f32 / (1u64 << 24) as f32
        };
        let mut all = Vec::new();
        for i in 0..n {
            let v: Vec<f32> = (0..dim).map(|_| next()).collect();
            all.push((i as u128, v.clone()));
            index.add(row(i as u128, "s", v)).unwrap();
        }
        let q: Vec<f32> = (0..dim).map(|_| next()).collect();

        let scanned = index.search("m", "h", &query(&q, 7)).unwrap();
        index.index_large_sets();
        let probed = index.search("m", "h", &query(&q, 7)).unwrap();

        all.sort_by(|a, b| squared_euclidean(&a.1, &q).total_cmp(&squared_euclidean(&b.1, &q)));
        let expected: Vec<u128> = all[..7].iter().map(|(i, _)| *i).collect();
        let images = |hits: &[Hit]| hits.iter().map(|h| h.image.0).collect::<Vec<_>>();
        assert_eq!(images(&scanned), expected, "the scan, shared between threads");
        assert!(index.models["m"]["h"].cells.is_some());
        assert_eq!(images(&probed), expected, "every cell, dealt out between threads");
    }
}

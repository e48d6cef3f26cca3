//! Every pair of embeddings closer than a threshold: an exact scan of the upper triangle for sets small
//! enough to scan, and an inverted-file partition (`cells.rs`) above that, without an N×N matrix.

use std::fmt;

use tch::TchError;

use super::cells;
use crate::model::distance::{from_squared, squared_euclidean};

/// Up to this many vectors the exact scan is the default: at 7,700 photos it takes about a second on two
/// cores, and it grows with the square of the count.
pub(crate) const EXACT_UP_TO: usize = 20_000;

/// How the pairs are found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Exact up to `EXACT_UP_TO` vectors, approximate above.
    Auto,
    /// Every pair measured: exact, and quadratic in the count.
    Exact,
    /// Each vector against the vectors of its nearest cells (k-means cells, as faiss's IVF).
    Approximate,
}

/// The name the command line takes.
impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = clap::ValueEnum::to_possible_value(self).expect("no method is hidden");
        f.write_str(name.get_name())
    }
}

/// Two vectors closer than the threshold (`a < b`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct NearPair {
    pub(crate) a: usize,
    pub(crate) b: usize,
    pub(crate) distance: f32,
}

/// What the search found.
pub(crate) struct NearPairs {
    /// Sorted by `(a, b)`, each pair once.
    pub(crate) pairs: Vec<NearPair>,
    /// Each vector's distance to its nearest other vector (infinite when alone): the histogram of the
    /// report, where a threshold in a valley shows.
    pub(crate) nearest: Vec<f32>,
    /// The method used (never `Auto`).
    pub(crate) method: Method,
}

/// Every pair of `rows` (vectors of `dim` floats, one after the other) closer than `threshold`.
pub(crate) fn near_pairs(dim: usize, rows: &[f32], threshold: f32, method: Method) -> Result<NearPairs, TchError> {
    let n = rows.len() / dim.max(1);
    let method = match method {
        Method::Auto if n <= EXACT_UP_TO => Method::Exact,
        Method::Auto => Method::Approximate,
        chosen => chosen,
    };
    if n == 0 {
        // Nothing to compare (an empty catalogue has no vector length either).
        return Ok(NearPairs {
            pairs: Vec::new(),
            nearest: Vec::new(),
            method,
        });
    }
    let limit = threshold * threshold;
    let (mut pairs, nearest) = if method == Method::Exact {
        exact(dim, rows, limit)
    } else {
        cells::near_pairs(dim, rows, limit)?
    };
    pairs.sort_by_key(|p| (p.a, p.b));
    pairs.dedup_by_key(|p| (p.a, p.b));
    Ok(NearPairs {
        pairs,
        nearest: nearest
            .into_iter()
            .map(|sq| if sq.is_finite() { from_squared(sq) } else { sq })
            .collect(),
        method,
    })
}

fn threads(n: usize) -> usize {
    std::thread::available_parallelism()
        .map_or(1, |t| t.get())
        .min(n.max(1))
}

/// One thread's pairs and squared nearest distances.
pub(super) type Part = (Vec<NearPair>, Vec<f32>);

/// Rows `i ≡ t (mod threads)` against every later row, on `threads` threads: interleaved, so that every
/// thread gets as many long rows as short ones. Answers the pairs and squared nearest distances.
fn exact(dim: usize, rows: &[f32], limit: f32) -> Part {
    let n = rows.len() / dim;
    let threads = threads(n);
    let row = |i: usize| &rows[i * dim..(i + 1) * dim];
    let parts: Vec<Part> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || {
                    let mut pairs = Vec::new();
                    let mut nearest = vec![f32::INFINITY; n];
                    for a in (t..n).step_by(threads) {
                        for b in a + 1..n {
                            let squared = squared_euclidean(row(a), row(b));
                            nearest[a] = nearest[a].min(squared);
                            nearest[b] = nearest[b].min(squared);
                            if squared < limit {
                                pairs.push(NearPair {
                                    a,
                                    b,
                                    distance: from_squared(squared),
                                });
                            }
                        }
                    }
                    (pairs, nearest)
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("a pair scan thread does not panic; this is a bug"))
            .collect()
    });
    merge(parts, n)
}

/// The threads' pairs in one list, and the least of their nearest distances.
fn merge(parts: Vec<Part>, n: usize) -> Part {
    let mut pairs = Vec::new();
    let mut nearest = vec![f32::INFINITY; n];
    for (part, near) in parts {
        pairs.extend(part);
        for (best, candidate) in nearest.iter_mut().zip(near) {
            *best = best.min(candidate);
        }
    }
    (pairs, nearest)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Points on a line at `positions`, in two dimensions.
    fn line(positions: &[f32]) -> Vec<f32> {
        positions.iter().flat_map(|&x| [x, 0.0]).collect()
    }

    #[test]
    fn exact_finds_the_close_pairs_once_each() {
        let rows = line(&[0.0, 0.1, 5.0, 5.05, 9.0]);

        let found = near_pairs(2, &rows, 0.2, Method::Auto).unwrap();

        assert_eq!(found.method, Method::Exact);
        let pairs: Vec<(usize, usize)> = found.pairs.iter().map(|p| (p.a, p.b)).collect();
        assert_eq!(pairs, vec![(0, 1), (2, 3)]);
        assert!((found.pairs[1].distance - 0.05).abs() < 1e-5);
        assert!(
            (found.nearest[4] - 3.95).abs() < 1e-4,
            "nearest of the loner: {}",
            found.nearest[4]
        );
    }

    #[test]
    fn no_vectors_no_pairs() {
        for method in [Method::Exact, Method::Approximate] {
            let found = near_pairs(0, &[], 1.0, method).unwrap();
            assert!(found.pairs.is_empty() && found.nearest.is_empty());
        }
    }

    #[test]
    fn approximate_agrees_with_exact_on_a_large_group() {
        // 40 copies of one point and 300 spread points.
        let mut positions: Vec<f32> = (0..40).map(|i| 1000.0 + i as f32 * 0.001).collect();
        positions.extend((0..300).map(|i| i as f32 * 3.0));
        let rows = line(&positions);

        let exact = near_pairs(2, &rows, 0.5, Method::Exact).unwrap();
        let approximate = near_pairs(2, &rows, 0.5, Method::Approximate).unwrap();

        assert_eq!(exact.pairs.len(), 40 * 39 / 2);
        let key = |p: &NearPair| (p.a, p.b);
        assert_eq!(
            approximate.pairs.iter().map(key).collect::<Vec<_>>(),
            exact.pairs.iter().map(key).collect::<Vec<_>>()
        );
    }

    #[test]
    fn approximate_finds_what_exact_finds_among_random_vectors() {
        use rand::{Rng, SeedableRng};
        // 3000 random unit vectors of 64 floats, 100 of them copies of others moved by 0.05 to 0.3.
        let (dim, n, copies) = (64, 3000, 100);
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let unit = |rng: &mut rand::rngs::StdRng, length: f32| {
            let v: Vec<f32> = (0..dim).map(|_| rng.gen_range(-1.0f32..1.0)).collect();
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            v.into_iter().map(|x| x * length / norm).collect::<Vec<_>>()
        };
        let mut rows: Vec<f32> = (0..n - copies).flat_map(|_| unit(&mut rng, 1.0)).collect();
        for _ in 0..copies {
            let source = rng.gen_range(0..n - copies);
            let length = rng.gen_range(0.05..0.3);
            let moved: Vec<f32> = unit(&mut rng, length)
                .into_iter()
                .zip(&rows[source * dim..(source + 1) * dim])
                .map(|(a, b)| a + b)
                .collect();
            rows.extend(moved);
        }

        let exact = near_pairs(dim, &rows, 0.5, Method::Exact).unwrap();
        let approximate = near_pairs(dim, &rows, 0.5, Method::Approximate).unwrap();

        let key = |p: &NearPair| (p.a, p.b);
        let truth: std::collections::HashSet<_> = exact.pairs.iter().map(key).collect();
        assert!(truth.len() >= copies, "the copies are near pairs: {}", truth.len());
        assert!(
            approximate.pairs.iter().all(|p| truth.contains(&key(p))),
            "no pair exact does not find"
        );
        let recall = approximate.pairs.len() as f64 / truth.len() as f64;
        assert!(recall >= 0.99, "recall {recall} of {} pairs", truth.len());
        for (a, e) in approximate.nearest.iter().zip(&exact.nearest) {
            assert!(a >= &(e - 1e-4), "no nearer neighbour than the nearest: {a} < {e}");
        }
    }
}

//! Every pair of embeddings closer than a threshold, without an N×N matrix: an exact scan of the upper
//! triangle for sets small enough to scan, and the approximate index (k nearest neighbours of every
//! vector) above that.

use std::fmt;

use crate::model::distance::{from_squared, squared_euclidean};
use crate::store::{Ann, AnnError};

/// Up to this many vectors the exact scan is the default: at 7,700 photos it takes about a second on two
/// cores, and it grows with the square of the count (`scripts/bench-ann` measures where the index wins).
pub(crate) const EXACT_UP_TO: usize = 20_000;

/// Neighbours asked of the index per vector at first; a vector whose every neighbour is under the
/// threshold is asked again for four times as many, up to the cluster size guard.
const FIRST_NEIGHBOURS: usize = 16;

/// How the pairs are found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Exact up to `EXACT_UP_TO` vectors, approximate above.
    Auto,
    /// Every pair measured: exact, and quadratic in the count.
    Exact,
    /// Each vector's nearest neighbours from an HNSW index.
    Approximate,
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Method::Auto => "auto",
            Method::Exact => "exact",
            Method::Approximate => "approximate",
        })
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

/// Every pair of `rows` (vectors of `dim` floats, one after the other) closer than `threshold`, with the
/// approximate method asking for at most `max_neighbours` per vector.
pub(crate) fn near_pairs(
    dim: usize,
    rows: &[f32],
    threshold: f32,
    method: Method,
    max_neighbours: usize,
) -> Result<NearPairs, AnnError> {
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
        approximate(dim, rows, limit, max_neighbours)?
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
type Part = (Vec<NearPair>, Vec<f32>);

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

/// Each row's nearest neighbours in an HNSW index of all rows; a row whose every answer is under the
/// limit is asked again for more, so that large groups of copies are not cut at `FIRST_NEIGHBOURS`.
fn approximate(dim: usize, rows: &[f32], limit: f32, max_neighbours: usize) -> Result<Part, AnnError> {
    let n = rows.len() / dim;
    let index = Ann::build(dim, rows)?;
    let threads = threads(n);
    let ceiling = max_neighbours.max(FIRST_NEIGHBOURS).min(n);
    let parts: Vec<Result<Part, AnnError>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let index = &index;
                scope.spawn(move || {
                    let mut pairs = Vec::new();
                    let mut nearest = vec![f32::INFINITY; n];
                    for a in (t..n).step_by(threads) {
                        let query = &rows[a * dim..(a + 1) * dim];
                        // One more than wanted: the row finds itself.
                        let mut k = (FIRST_NEIGHBOURS + 1).min(n);
                        let hits = loop {
                            let hits = index.search(query, k, |_| true)?;
                            let full = hits.len() == k && hits.last().is_some_and(|h| h.1 < limit);
                            if !full || k >= ceiling {
                                break hits;
                            }
                            k = (k * 4).min(ceiling);
                        };
                        for (key, _) in hits {
                            let b = key as usize;
                            if b == a {
                                continue;
                            }
                            // Measured again here, as every scan measures, so that exact and approximate
                            // searches compare the same numbers with the threshold.
                            let squared = squared_euclidean(query, &rows[b * dim..(b + 1) * dim]);
                            nearest[a] = nearest[a].min(squared);
                            nearest[b] = nearest[b].min(squared);
                            if squared < limit {
                                pairs.push(NearPair {
                                    a: a.min(b),
                                    b: a.max(b),
                                    distance: from_squared(squared),
                                });
                            }
                        }
                    }
                    Ok((pairs, nearest))
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("a pair search thread does not panic; this is a bug"))
            .collect()
    });
    Ok(merge(parts.into_iter().collect::<Result<Vec<_>, _>>()?, n))
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

        let found = near_pairs(2, &rows, 0.2, Method::Auto, 100).unwrap();

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
            let found = near_pairs(0, &[], 1.0, method, 10).unwrap();
            assert!(found.pairs.is_empty() && found.nearest.is_empty());
        }
    }

    #[test]
    fn approximate_agrees_with_exact_on_groups_larger_than_its_first_ask() {
        // 40 copies of one point (more than FIRST_NEIGHBOURS) and 300 spread points.
        let mut positions: Vec<f32> = (0..40).map(|i| 1000.0 + i as f32 * 0.001).collect();
        positions.extend((0..300).map(|i| i as f32 * 3.0));
        let rows = line(&positions);

        let exact = near_pairs(2, &rows, 0.5, Method::Exact, 1000).unwrap();
        let approximate = near_pairs(2, &rows, 0.5, Method::Approximate, 1000).unwrap();

        assert_eq!(exact.pairs.len(), 40 * 39 / 2);
        let key = |p: &NearPair| (p.a, p.b);
        assert_eq!(
            approximate.pairs.iter().map(key).collect::<Vec<_>>(),
            exact.pairs.iter().map(key).collect::<Vec<_>>()
        );
    }
}

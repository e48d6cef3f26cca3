//! All-pairs search through an HNSW graph (USearch, as `/search` uses above `--ann-min-images`), on the
//! vectors `scripts/bench-dedup-scale` plants copies among: the measurement behind `dedup`'s use of
//! k-means cells rather than the graph (README, "Why two structures").
//!
//! `cargo run --release --example hnsw_all_pairs -- [N] [CANDIDATES_WHILE_BUILDING]` (200000, 128) builds
//! the index on every core, asks it for each vector's 16 nearest, and prints both times and the share of
//! the planted pairs (1% of N, at 0.1 to 0.5 of the product model's threshold) found.

use std::collections::HashSet;
use std::time::Instant;

use rand::{Rng, SeedableRng};
use usearch::{Index, IndexOptions, MetricKind, ScalarKind};

const DIM: usize = 256;
/// The product model's calibrated threshold.
const THRESHOLD: f32 = 1.1;
const NEIGHBOURS: usize = 16;

/// A random unit-length direction scaled to `length` (Box–Muller normals).
fn random_vector(rng: &mut impl Rng, length: f32) -> Vec<f32> {
    let v: Vec<f32> = (0..DIM)
        .map(|_| {
            let (u, w): (f32, f32) = (rng.gen_range(f32::EPSILON..1.0), rng.gen());
            (-2.0 * u.ln()).sqrt() * (std::f32::consts::TAU * w).cos()
        })
        .collect();
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.into_iter().map(|x| x * length / norm).collect()
}

fn main() {
    let args: Vec<usize> = std::env::args().skip(1).map(|a| a.parse().expect("a count")).collect();
    let n = args.first().copied().unwrap_or(200_000);
    let expansion_add = args.get(1).copied().unwrap_or(128);
    let planted = n / 100;
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut rows: Vec<f32> = (0..n - planted).flat_map(|_| random_vector(&mut rng, 1.0)).collect();
    let mut pairs = Vec::new();
    for copy in n - planted..n {
        let source = rng.gen_range(0..n - planted);
        let length = rng.gen_range(0.1..0.5) * THRESHOLD;
        let noise = random_vector(&mut rng, length);
        let moved: Vec<f32> = rows[source * DIM..(source + 1) * DIM]
            .iter()
            .zip(noise)
            .map(|(a, b)| a + b)
            .collect();
        rows.extend(moved);
        pairs.push((source, copy));
    }

    let options = IndexOptions {
        dimensions: DIM,
        metric: MetricKind::L2sq,
        quantization: ScalarKind::F32,
        connectivity: 16,
        expansion_add,
        expansion_search: 64,
        multi: false,
    };
    let index = Index::new(&options).expect("an index");
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
    index.reserve_capacity_and_threads(n, threads).expect("room");
    let row = |i: usize| &rows[i * DIM..(i + 1) * DIM];
    let started = Instant::now();
    std::thread::scope(|scope| {
        for t in 0..threads {
            let index = &index;
            scope.spawn(move || {
                (t..n)
                    .step_by(threads)
                    .for_each(|i| index.add(i as u64, row(i)).expect("added"))
            });
        }
    });
    let build = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let limit = THRESHOLD * THRESHOLD;
    let found: HashSet<(usize, usize)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let index = &index;
                scope.spawn(move || {
                    let mut near = Vec::new();
                    for a in (t..n).step_by(threads) {
                        let hits = index.search(row(a), NEIGHBOURS + 1).expect("searched");
                        for (&key, &squared) in hits.keys.iter().zip(&hits.distances) {
                            let b = key as usize;
                            if b != a && squared < limit {
                                near.push((a.min(b), a.max(b)));
                            }
                        }
                    }
                    near
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().expect("no panic")).collect()
    });
    let search = started.elapsed().as_secs_f64();
    let hits = pairs
        .iter()
        .filter(|&&(a, b)| found.contains(&(a.min(b), a.max(b))))
        .count();
    println!(
        "N={n} candidates while building={expansion_add}: build {build:.0} s, search {search:.0} s, \
         planted pairs found {hits}/{planted} ({:.3})",
        hits as f64 / planted as f64
    );
}

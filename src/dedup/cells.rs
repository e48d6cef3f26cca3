//! Every near pair of a large set without an N×N matrix: an inverted-file partition (the IVF of faiss's
//! `IndexIVFFlat`). K-means cuts the vectors into about √N cells; each vector lives in its nearest cell
//! and is compared, by libtorch's matrix products, with the members of its `PROBES` nearest cells.
//!
//! The catalogue's `/search` index (`store/cells.rs`) keeps the same kind of cells and asks them one query
//! at a time; here every vector asks at once, which libtorch's dense products answer fastest.

use tch::{TchError, Tensor};

use super::pairs::{NearPair, Part};
use crate::kmeans::{assign, cell_count, kmeans, squared_norms};
use crate::model::distance::{from_squared, squared_euclidean};

/// Cells each vector is compared with (its own and the next nearest): 16 of about √N found 99.6% of
/// the planted copies at 1,000,000 vectors, 8 found 99.0% at 200,000 (`scripts/bench-dedup-scale`).
const PROBES: usize = 16;

/// Most entries of one block of distances (64 MiB of floats).
const BLOCK_ENTRIES: usize = 1 << 24;

/// Every pair of `rows` (vectors of `dim` floats) whose squared distance is under `limit`, found among
/// the near cells of each vector, and each vector's squared distance to its nearest one seen.
pub(super) fn near_pairs(dim: usize, rows: &[f32], limit: f32) -> Result<Part, TchError> {
    let _no_grad = tch::no_grad_guard();
    let n = rows.len() / dim;
    let cells = cell_count(n);
    let probes = PROBES.min(cells);
    let x = Tensor::f_from_slice(rows)?.f_view([n as i64, dim as i64])?;
    let centroids = kmeans(rows, dim, cells)?;
    // Each vector's `probes` nearest cells, nearest first: the first is its home.
    let nearest_cells = assign(rows, dim, &centroids, probes)?;
    let home: Vec<usize> = nearest_cells.chunks(probes).map(|c| c[0]).collect();
    let members = group(n, cells, home.iter().copied().enumerate());
    let askers = group(
        n * probes,
        cells,
        nearest_cells.iter().enumerate().map(|(at, &cell)| (at / probes, cell)),
    );
    // Where each vector sits among its home cell's members: the entry of its distance to itself.
    let mut place = vec![0usize; n];
    for list in &members {
        for (column, &v) in list.iter().enumerate() {
            place[v] = column;
        }
    }

    let row = |i: usize| &rows[i * dim..(i + 1) * dim];
    // Float rounding in the products may put a pair just over the limit: such candidates are measured
    // again below, as the exact scan measures them.
    let candidate = limit + 1e-4 * (1.0 + limit);
    let mut pairs = Vec::new();
    let mut nearest = vec![f32::INFINITY; n];
    for (cell, (list, asking)) in members.iter().zip(&askers).enumerate() {
        if list.is_empty() || asking.is_empty() {
            continue;
        }
        let m = Tensor::f_from_slice(&to_i64(list))?;
        let xm = x.f_index_select(0, &m)?;
        let member_norms = squared_norms(&xm)?;
        let members_t = xm.f_tr()?;
        for block in asking.chunks((BLOCK_ENTRIES / list.len()).max(1)) {
            let q = Tensor::f_from_slice(&to_i64(block))?;
            let xq = x.f_index_select(0, &q)?;
            let query_norms: Vec<f32> = Vec::try_from(squared_norms(&xq)?)?;
            // ‖m‖² − 2 q·m for every (query, member); adding ‖q‖² per row makes the squared distance.
            let mut partial = member_norms
                .f_unsqueeze(0)?
                .f_addmm(&xq.f_mul_scalar(-2.0)?, &members_t)?;
            // A vector at home is one of the members: its distance to itself is no neighbour.
            let at_home: Vec<(i64, i64)> = block
                .iter()
                .enumerate()
                .filter(|&(_, &v)| home[v] == cell)
                .map(|(r, &v)| (r as i64, place[v] as i64))
                .collect();
            if !at_home.is_empty() {
                let (r, c): (Vec<i64>, Vec<i64>) = at_home.into_iter().unzip();
                let _ = partial.f_index_put_(
                    &[Some(Tensor::f_from_slice(&r)?), Some(Tensor::f_from_slice(&c)?)],
                    &Tensor::from(f32::INFINITY),
                    false,
                )?;
            }
            let least: Vec<f32> = Vec::try_from(partial.f_amin(1, false)?)?;
            for ((&v, least), norm) in block.iter().zip(least).zip(&query_norms) {
                nearest[v] = nearest[v].min((least + norm).max(0.0));
            }
            let bounds = Tensor::f_from_slice(&query_norms.iter().map(|norm| candidate - norm).collect::<Vec<_>>())?;
            let hits: Vec<i64> = Vec::try_from(
                partial
                    .f_lt_tensor(&bounds.f_unsqueeze(1)?)?
                    .f_nonzero()?
                    .f_flatten(0, -1)?,
            )?;
            for hit in hits.chunks(2) {
                let (a, b) = (block[hit[0] as usize], list[hit[1] as usize]);
                let squared = squared_euclidean(row(a), row(b));
                if squared < limit {
                    nearest[a] = nearest[a].min(squared);
                    nearest[b] = nearest[b].min(squared);
                    pairs.push(NearPair {
                        a: a.min(b),
                        b: a.max(b),
                        distance: from_squared(squared),
                    });
                }
            }
        }
    }
    Ok((pairs, nearest))
}

/// The vectors of each cell, in order, from `(vector, cell)` entries.
fn group(entries: usize, cells: usize, of: impl Iterator<Item = (usize, usize)>) -> Vec<Vec<usize>> {
    let mut lists = vec![Vec::with_capacity(entries / cells + 1); cells];
    for (v, cell) in of {
        lists[cell].push(v);
    }
    lists
}

fn to_i64(list: &[usize]) -> Vec<i64> {
    list.iter().map(|&v| v as i64).collect()
}

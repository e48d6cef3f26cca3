//! K-means cells over embeddings, shared by the two approximate searches: `dedup`'s all-pairs search and
//! the catalogue's index for `/search`. Rows are `dim` floats each, row `i` at `i * dim` of a slice; only
//! the sample and a block at a time are copied into tensors, never the whole set.

use tch::{Kind, TchError, Tensor};

/// K-means rounds over the sample: the cells only need to keep near vectors together, not to converge.
const KMEANS_ROUNDS: usize = 10;

/// Sample vectors per cell that k-means learns from.
const SAMPLE_PER_CELL: usize = 64;

/// Rows assigned to cells at once.
const ASSIGN_ROWS: usize = 65_536;

/// The number of cells for `n` vectors: about √N, where scanning the centroids costs as much as scanning
/// one cell.
pub(crate) fn cell_count(n: usize) -> usize {
    ((n as f64).sqrt().round() as usize).max(1)
}

/// `cells` centroids (`[cells, dim]`, at most one per row) by k-means over an evenly spaced sample of
/// [`SAMPLE_PER_CELL`] rows a cell, starting from evenly spaced rows (deterministic: the same rows give the
/// same cells). A cell left empty keeps its centroid.
pub(crate) fn kmeans(rows: &[f32], dim: usize, cells: usize) -> Result<Tensor, TchError> {
    let _no_grad = tch::no_grad_guard();
    let n = rows.len() / dim;
    let cells = cells.min(n).max(1);
    let sample = every_nth(rows, dim, (n / (cells * SAMPLE_PER_CELL)).max(1), n)?;
    let mut centroids = every_nth(rows, dim, (n / cells).max(1), cells)?;
    for _ in 0..KMEANS_ROUNDS {
        let nearest = closest(&sample, &centroids, 1)?.f_select(1, 0)?;
        let sums = centroids.f_zeros_like()?.f_index_add(0, &nearest, &sample)?;
        let counts = nearest
            .f_bincount::<Tensor>(None, cells as i64)?
            .f_to_kind(Kind::Float)?
            .f_unsqueeze(1)?;
        let means = sums.f_div(&counts.f_clamp_min(1.0)?)?;
        centroids = means.f_where_self(&counts.f_gt(0.0)?, &centroids)?;
    }
    Ok(centroids)
}

/// Each row's `probes` nearest cells, nearest first, row after row.
pub(crate) fn assign(rows: &[f32], dim: usize, centroids: &Tensor, probes: usize) -> Result<Vec<usize>, TchError> {
    let _no_grad = tch::no_grad_guard();
    let mut cells = Vec::with_capacity(rows.len() / dim * probes);
    for block in rows.chunks(ASSIGN_ROWS * dim) {
        let x = Tensor::f_from_slice(block)?.f_view([(block.len() / dim) as i64, dim as i64])?;
        let nearest: Vec<i64> = Vec::try_from(closest(&x, centroids, probes)?.f_flatten(0, -1)?)?;
        cells.extend(nearest.into_iter().map(|c| c as usize));
    }
    Ok(cells)
}

/// The `k` nearest centroids of each row of `x`, nearest first (`[rows, k]`).
fn closest(x: &Tensor, centroids: &Tensor, k: usize) -> Result<Tensor, TchError> {
    // ‖x − c‖² ranks as ‖c‖² − 2 x·c: the row's own norm is the same for every centroid.
    let norms = squared_norms(centroids)?;
    let scores = norms
        .f_unsqueeze(0)?
        .f_addmm(&x.f_mul_scalar(-2.0)?, &centroids.f_tr()?)?;
    Ok(scores.f_topk(k as i64, 1, false, true)?.1)
}

/// Each row's squared length.
pub(crate) fn squared_norms(rows: &Tensor) -> Result<Tensor, TchError> {
    rows.f_square()?.f_sum_dim_intlist(1, false, Kind::Float)
}

/// Rows 0, `step`, 2 `step`... (at most `most` of them) as a `[_, dim]` tensor.
fn every_nth(rows: &[f32], dim: usize, step: usize, most: usize) -> Result<Tensor, TchError> {
    let picked: Vec<f32> = rows
        .chunks_exact(dim)
        .step_by(step)
        .take(most)
        .flatten()
        .copied()
        .collect();
    Tensor::f_from_slice(&picked)?.f_view([(picked.len() / dim) as i64, dim as i64])
}

//! K-means cells over embeddings, shared by the two approximate searches: `dedup`'s all-pairs search and
//! the catalogue's index for `/search`.

use tch::{Kind, TchError, Tensor};

/// K-means rounds over the sample: the cells only need to keep near vectors together, not to converge.
const KMEANS_ROUNDS: usize = 10;

/// Sample vectors per cell that k-means learns from.
pub(crate) const SAMPLE_PER_CELL: usize = 64;

/// The number of cells for `n` vectors: about √N, where scanning the centroids costs as much as scanning
/// one cell.
pub(crate) fn cell_count(n: usize) -> usize {
    ((n as f64).sqrt().round() as usize).max(1)
}

/// `cells` centroids of the `n` rows of `x` by k-means over an evenly spaced sample of at most
/// [`SAMPLE_PER_CELL`] a cell, starting from evenly spaced rows (deterministic: the same rows give the same
/// cells). A cell left empty keeps its centroid.
pub(crate) fn kmeans(x: &Tensor, n: usize, cells: usize) -> Result<Tensor, TchError> {
    let _no_grad = tch::no_grad_guard();
    let step = (n / (cells * SAMPLE_PER_CELL)).max(1) as i64;
    let sample = x.f_slice(0, 0, n as i64, step)?;
    let mut centroids = x
        .f_slice(0, 0, n as i64, (n / cells).max(1) as i64)?
        .f_narrow(0, 0, cells as i64)?
        .contiguous();
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

/// The `k` nearest centroids of each row of `x`, nearest first (`[rows, k]`).
pub(crate) fn closest(x: &Tensor, centroids: &Tensor, k: usize) -> Result<Tensor, TchError> {
    let _no_grad = tch::no_grad_guard();
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

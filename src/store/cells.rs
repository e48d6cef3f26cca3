//! The approximate index of a large set for `/search`: an inverted file. K-means cuts the set's vectors
//! into about √N cells ([`crate::kmeans`]); a search measures the query against the centroids, then
//! exactly against every member of its nearest cells (`--ann-probes`: 128 of a million vectors' thousand
//! cells). The rows are laid out cell by cell when the cells are built, so each probed cell is one run of
//! memory.
//!
//! An HNSW graph (USearch) answered these searches before; on two cores, with a million random unit
//! vectors of 256 floats, it took 20 minutes to build and found 34% of planted near-copies, where the
//! cells take about 15 s and find 99.7% in 5 ms a search (README, "The approximate index of `/search`").
//! They also take 8 bytes a vector beside the rows, and follow every add and removal without a rebuild.

use tch::TchError;

use crate::kmeans::{assign, cell_count, kmeans};
use crate::model::distance::squared_euclidean;

/// Cells a search looks into by default, the query's nearest: the fewest that found 99% of the near
/// answers the exact scan finds among a million random 256-d vectors (`scripts/bench-search`: 64 cells
/// 98.9%, 128 cells 99.7%).
pub(crate) const ANN_PROBES: usize = 128;

/// Cells over one set's rows, kept keyed by row number as the rows move (see [`Cells::swap_remove`]).
pub(crate) struct Cells {
    dim: usize,
    /// `cells * dim` floats, centroid `c` at `c * dim`; fixed once built.
    centroids: Vec<f32>,
    /// The rows filed in each cell.
    members: Vec<Vec<u32>>,
    /// Each row's cell.
    home: Vec<u32>,
}

impl Cells {
    /// Cells over `rows` (row `i` at `i * dim`): k-means, then every row filed in its nearest cell. With
    /// them comes the order that lays each cell's rows side by side, cell after cell: the caller moves its
    /// rows into it (new row `i` is old row `order[i]`), and the cells already number the rows so, which
    /// lets a search read each cell it probes as one run of memory rather than rows scattered over the set.
    pub(crate) fn build(dim: usize, rows: &[f32]) -> Result<(Self, Vec<usize>), TchError> {
        let centroids = kmeans(rows, dim, cell_count(rows.len() / dim))?;
        let cell_of_row = assign(rows, dim, &centroids, 1)?;
        let centroids: Vec<f32> = Vec::try_from(centroids.f_flatten(0, -1)?)?;
        let mut order: Vec<usize> = (0..cell_of_row.len()).collect();
        order.sort_by_key(|&row| cell_of_row[row]);
        let home: Vec<u32> = order.iter().map(|&row| cell_of_row[row] as u32).collect();
        let mut members = vec![Vec::new(); centroids.len() / dim];
        for (row, &cell) in home.iter().enumerate() {
            members[cell as usize].push(row as u32);
        }
        let cells = Self {
            dim,
            centroids,
            members,
            home,
        };
        Ok((cells, order))
    }

    /// Files the next row (numbered after every row filed so far) in its nearest cell.
    pub(crate) fn push(&mut self, vector: &[f32]) {
        let cell = self.nearest_cells(vector, 1)[0];
        self.members[cell].push(self.home.len() as u32);
        self.home.push(cell as u32);
    }

    /// Forgets row `at` and files the last row under `at`, as the rows' own swap-removal moves it.
    pub(crate) fn swap_remove(&mut self, at: usize) {
        let last = self.home.len() - 1;
        self.forget(at);
        if at != last {
            let cell = self.home[last] as usize;
            if let Some(entry) = self.members[cell].iter_mut().find(|r| **r as usize == last) {
                *entry = at as u32;
            }
        }
        self.home.swap_remove(at);
    }

    /// The rows of the query's `probes` nearest cells, cell by cell, nearest first: the candidates a
    /// search measures.
    pub(crate) fn candidates(&self, query: &[f32], probes: usize) -> Vec<&[u32]> {
        self.nearest_cells(query, probes)
            .into_iter()
            .map(|cell| self.members[cell].as_slice())
            .collect()
    }

    /// Bytes held beside the rows.
    pub(crate) fn memory(&self) -> usize {
        self.centroids.len() * 4 + self.home.len() * 4 + self.members.iter().map(|m| m.capacity() * 4).sum::<usize>()
    }

    fn forget(&mut self, row: usize) {
        let list = &mut self.members[self.home[row] as usize];
        if let Some(i) = list.iter().position(|&r| r as usize == row) {
            list.swap_remove(i);
        }
    }

    /// The `count` cells whose centroids are nearest `vector`, nearest first.
    fn nearest_cells(&self, vector: &[f32], count: usize) -> Vec<usize> {
        let mut cells: Vec<(f32, usize)> = self
            .centroids
            .chunks_exact(self.dim)
            .map(|c| squared_euclidean(c, vector))
            .zip(0..)
            .collect();
        let count = count.min(cells.len());
        if count < cells.len() {
            cells.select_nth_unstable_by(count, |a, b| a.0.total_cmp(&b.0));
            cells.truncate(count);
        }
        cells.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
        cells.into_iter().map(|(_, c)| c).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Four tight groups on the axes of the plane.
    fn rows() -> Vec<f32> {
        let centres = [(10.0, 0.0), (-10.0, 0.0), (0.0, 10.0), (0.0, -10.0)];
        (0..400)
            .flat_map(|i| {
                let (x, y) = centres[i % 4];
                [x + (i % 7) as f32 * 0.01, y + (i % 5) as f32 * 0.01]
            })
            .collect()
    }

    #[test]
    fn every_row_is_filed_once_and_followed_through_swap_removals() {
        let data = rows();
        let (mut cells, order) = Cells::build(2, &data).unwrap();
        assert_eq!(cells.members.iter().map(Vec::len).sum::<usize>(), 400);
        let mut moved = order.clone();
        moved.sort_unstable();
        assert_eq!(moved, (0..400).collect::<Vec<_>>(), "the order moves every row once");
        for list in &cells.members {
            assert!(
                list.windows(2).all(|w| w[1] == w[0] + 1),
                "a cell's rows lie side by side in the new order"
            );
        }

        cells.swap_remove(3);
        cells.push(&[10.0, 0.0]);

        assert_eq!(cells.home.len(), 400);
        let mut filed: Vec<u32> = cells.members.iter().flatten().copied().collect();
        filed.sort_unstable();
        assert_eq!(
            filed,
            (0..400).collect::<Vec<u32>>(),
            "each row number in exactly one cell"
        );
        for (row, &cell) in cells.home.iter().enumerate() {
            assert!(cells.members[cell as usize].contains(&(row as u32)));
        }
    }
}

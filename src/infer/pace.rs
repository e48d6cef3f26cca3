//! How fast work drains: a model's workers through its queue, or the decode pool through its wait; the basis
//! of the `Retry-After` an overloaded queue answers.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Shared by a model's queue (which reads it) and its workers (which feed it).
#[derive(Debug)]
pub(super) struct Pace {
    /// Moving average of one batch's forward pass, in microseconds; 0 until the first batch.
    batch_micros: AtomicU64,
    max_batch_size: usize,
    workers: usize,
}

impl Pace {
    pub(super) fn new(max_batch_size: usize, workers: usize) -> Self {
        Self {
            batch_micros: AtomicU64::new(0),
            max_batch_size: max_batch_size.max(1),
            workers: workers.max(1),
        }
    }

    /// Folds one batch's duration into the average (weight 1/8: smooth, yet follows a load change
    /// within a few dozen batches). Races between workers only lose a sample, which is harmless.
    pub(super) fn record(&self, took: Duration) {
        let sample = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        let old = self.batch_micros.load(Ordering::Relaxed);
        let new = if old == 0 { sample } else { old - old / 8 + sample / 8 };
        self.batch_micros.store(new, Ordering::Relaxed);
    }

    /// How long until `queued` images have gone through the workers, in whole seconds (what a
    /// `Retry-After` header carries), never less than one.
    pub(super) fn retry_after(&self, queued: usize) -> Duration {
        // At least one round: a refused caller retrying sooner than one batch takes finds the same queue.
        let micros = self.drain_micros(queued.max(1));
        Duration::from_secs(micros.div_ceil(1_000_000).max(1))
    }

    /// How long until `queued` images have gone through, as measured so far (zero before any sample):
    /// what a newcomer behind them can expect to wait.
    pub(crate) fn drain_time(&self, queued: usize) -> Duration {
        Duration::from_micros(self.drain_micros(queued))
    }

    fn drain_micros(&self, queued: usize) -> u64 {
        let batches = queued.div_ceil(self.max_batch_size) as u64;
        let rounds = batches.div_ceil(self.workers as u64);
        rounds.saturating_mul(self.batch_micros.load(Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_at_least_one_second() {
        let pace = Pace::new(32, 2);

        assert_eq!(pace.retry_after(0), Duration::from_secs(1));
        pace.record(Duration::from_millis(5));
        assert_eq!(pace.retry_after(64), Duration::from_secs(1));
    }

    #[test]
    fn retry_after_grows_with_the_backlog_and_shrinks_with_workers() {
        let one_worker = Pace::new(10, 1);
        let four_workers = Pace::new(10, 4);
        for pace in [&one_worker, &four_workers] {
            pace.record(Duration::from_millis(500));
        }

        // 100 images = 10 batches of 0.5 s: 5 s on one worker, 3 rounds (1.5 s → 2 s) on four.
        assert_eq!(one_worker.retry_after(100), Duration::from_secs(5));
        assert_eq!(four_workers.retry_after(100), Duration::from_secs(2));
    }

    #[test]
    fn drain_time_is_exact_and_zero_before_any_sample() {
        let pace = Pace::new(1, 2);
        assert_eq!(pace.drain_time(10), Duration::ZERO);
        pace.record(Duration::from_millis(4));

        // 5 images on 2 slots: 3 rounds of 4 ms.
        assert_eq!(pace.drain_time(5), Duration::from_millis(12));
    }

    #[test]
    fn the_average_follows_new_samples() {
        let pace = Pace::new(1, 1);
        pace.record(Duration::from_secs(8));
        for _ in 0..64 {
            pace.record(Duration::from_millis(1));
        }

        assert_eq!(pace.retry_after(1), Duration::from_secs(1));
    }
}

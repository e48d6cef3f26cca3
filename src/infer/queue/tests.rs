//! Batch assembly under tokio's paused clock: the test reads the batches where workers would.

use std::sync::Arc;
use std::time::Duration;

use prometheus::IntGauge;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::*;

const WAIT: Duration = Duration::from_millis(10);
const FAR: Duration = Duration::from_secs(3600);

struct Harness {
    queue: Queue,
    batches: mpsc::Receiver<Batch>,
    depth: IntGauge,
}

/// A queue and its assembly task, with the test standing in for the workers.
fn harness(capacity: usize, max_batch_size: usize, max_batch_wait: Duration) -> Harness {
    let depth = IntGauge::new("test_queue_depth", "test").unwrap();
    let (queue, entries) = Queue::new(capacity, depth.clone(), Arc::new(Pace::new(max_batch_size, 1)));
    let (batch_tx, batches) = mpsc::channel(1);
    let policy = BatchPolicy {
        max_batch_size,
        max_batch_wait,
    };
    tokio::spawn(assemble_batches(entries, batch_tx, policy));
    Harness { queue, batches, depth }
}

/// `n` distinguishable one-float "images", tagged with `tag`.
fn images(tag: f32, n: usize) -> Vec<Vec<f32>> {
    (0..n).map(|i| vec![tag + i as f32 / 100.0]).collect()
}

fn image_count(batch: &Batch) -> usize {
    batch.entries.iter().map(Entry::images).sum()
}

fn tags(batch: &Batch) -> Vec<f32> {
    batch.entries.iter().map(|e| e.inputs[0][0]).collect()
}

#[tokio::test(start_paused = true)]
async fn a_batch_waits_up_to_the_window_for_more() {
    let mut h = harness(64, 8, WAIT);
    let start = Instant::now();

    let _a = h.queue.submit(images(1.0, 1), start + FAR).unwrap();
    tokio::time::sleep(WAIT / 2).await;
    assert!(h.batches.try_recv().is_err(), "the batch left before its window closed");
    let _b = h.queue.submit(images(2.0, 2), start + FAR).unwrap();
    let batch = h.batches.recv().await.unwrap();

    assert_eq!(tags(&batch), [1.0, 2.0]);
    assert_eq!(image_count(&batch), 3);
    // The window runs from the first entry's arrival, not the last one's.
    let waited = Instant::now() - start;
    assert!(
        waited >= WAIT && waited <= WAIT + Duration::from_millis(1),
        "waited {waited:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_full_batch_leaves_at_once() {
    let mut h = harness(64, 4, FAR);
    let start = Instant::now();

    let _a = h.queue.submit(images(1.0, 2), start + FAR).unwrap();
    let _b = h.queue.submit(images(2.0, 2), start + FAR).unwrap();
    let _c = h.queue.submit(images(3.0, 1), start + FAR).unwrap();
    let batch = h.batches.recv().await.unwrap();

    assert_eq!(Instant::now(), start, "a full batch must not wait for its window");
    assert_eq!(tags(&batch), [1.0, 2.0]);
    assert!(
        h.batches.try_recv().is_err(),
        "the third entry waits for its own window"
    );
}

#[tokio::test(start_paused = true)]
async fn while_the_workers_are_busy_the_next_batch_keeps_gathering() {
    // No fill window at all: batching comes only from entries arriving while the workers are busy.
    let mut h = harness(64, 8, Duration::ZERO);
    let deadline = Instant::now() + FAR;

    let _a = h.queue.submit(images(1.0, 1), deadline).unwrap();
    tokio::task::yield_now().await;
    // The first batch waits in the hand-off, unread: every worker is busy.
    let later: Vec<_> = [2.0, 3.0, 4.0]
        .into_iter()
        .map(|tag| h.queue.submit(images(tag, 1), deadline).unwrap())
        .collect();
    tokio::task::yield_now().await;
    let first = h.batches.recv().await.unwrap();
    let second = h.batches.recv().await.unwrap();

    assert_eq!(tags(&first), [1.0]);
    assert_eq!(
        tags(&second),
        [2.0, 3.0, 4.0],
        "entries that arrived meanwhile travel together"
    );
    drop(later);
}

#[tokio::test(start_paused = true)]
async fn a_submission_is_never_split_across_batches() {
    let mut h = harness(64, 4, WAIT);
    let deadline = Instant::now() + FAR;

    let _a = h.queue.submit(images(1.0, 3), deadline).unwrap();
    let _b = h.queue.submit(images(2.0, 2), deadline).unwrap();
    let _c = h.queue.submit(images(3.0, 6), deadline).unwrap();
    let first = h.batches.recv().await.unwrap();
    let second = h.batches.recv().await.unwrap();
    let third = h.batches.recv().await.unwrap();

    // 3 + 2 exceeds 4: the pair opens the next batch whole; 6 images exceed any batch and travel alone.
    assert_eq!((tags(&first), image_count(&first)), (vec![1.0], 3));
    assert_eq!((tags(&second), image_count(&second)), (vec![2.0], 2));
    assert_eq!((tags(&third), image_count(&third)), (vec![3.0], 6));
    let inputs: Vec<f32> = third.entries[0].inputs.iter().map(|x| x[0]).collect();
    assert_eq!(
        inputs,
        [3.0, 3.01, 3.02, 3.03, 3.04, 3.05],
        "order kept within a submission"
    );
}

#[tokio::test(start_paused = true)]
async fn an_entry_past_its_deadline_is_answered_and_not_computed() {
    let mut h = harness(64, 8, WAIT);
    let start = Instant::now();

    let expiring = h.queue.submit(images(1.0, 1), start + WAIT / 2).unwrap();
    let waiting = h.queue.submit(images(2.0, 1), start + FAR).unwrap();
    let batch = h.batches.recv().await.unwrap();

    assert_eq!(tags(&batch), [2.0]);
    assert_eq!(expiring.await.unwrap(), Err(InferError::DeadlineExceeded));
    drop(waiting);
}

#[tokio::test(start_paused = true)]
async fn an_entry_expired_on_arrival_is_answered_at_once() {
    let mut h = harness(64, 8, WAIT);
    let start = Instant::now();

    let expired = h.queue.submit(images(1.0, 1), start).unwrap();

    assert_eq!(expired.await.unwrap(), Err(InferError::DeadlineExceeded));
    assert_eq!(Instant::now(), start);
    tokio::time::sleep(FAR).await;
    assert!(h.batches.try_recv().is_err(), "nothing left to compute");
}

#[tokio::test(start_paused = true)]
async fn an_entry_whose_caller_left_is_skipped() {
    let mut h = harness(64, 8, WAIT);
    let deadline = Instant::now() + FAR;

    let gone = h.queue.submit(images(1.0, 3), deadline).unwrap();
    let _stays = h.queue.submit(images(2.0, 1), deadline).unwrap();
    drop(gone);
    let batch = h.batches.recv().await.unwrap();

    assert_eq!(tags(&batch), [2.0]);
    // The skipped entry gave its capacity back; the one in the batch holds its own until a worker takes it.
    assert_eq!(h.queue.queued(), 1);
    assert_eq!(h.depth.get(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_full_queue_refuses_at_once_and_admits_again_once_drained() {
    let mut h = harness(4, 8, WAIT);
    let start = Instant::now();
    let deadline = start + FAR;

    let _a = h.queue.submit(images(1.0, 3), deadline).unwrap();
    let refused = h.queue.submit(images(2.0, 2), deadline);
    assert!(
        matches!(refused, Err(InferError::Overloaded { retry_after }) if retry_after >= Duration::from_secs(1)),
        "{refused:?}"
    );
    assert_eq!(Instant::now(), start, "refusal must not wait");
    assert_eq!(h.depth.get(), 3, "a refused submission holds no capacity");

    let mut batch = h.batches.recv().await.unwrap();
    batch.entries.iter_mut().for_each(Entry::leave_queue);

    assert_eq!(h.queue.queued(), 0);
    assert!(h.queue.submit(images(2.0, 2), deadline).is_ok());
}

#[tokio::test(start_paused = true)]
async fn closing_the_queue_flushes_and_stops_the_task() {
    let Harness { queue, mut batches, .. } = harness(64, 8, FAR);

    let _a = queue.submit(images(1.0, 1), Instant::now() + FAR).unwrap();
    drop(queue);

    assert_eq!(tags(&batches.recv().await.unwrap()), [1.0]);
    assert!(
        batches.recv().await.is_none(),
        "the task ends when every queue handle is gone"
    );
}

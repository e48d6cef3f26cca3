//! A model's bounded submission queue and the task that assembles its entries into batches.
//!
//! The assembly task hands finished batches to a channel; the worker threads read it in production
//! and tests read it directly, so batching is tested without libtorch.

use std::sync::Arc;
use std::time::Duration;

use prometheus::IntGauge;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};
use tokio::time::{sleep_until, Instant};

use super::pace::Pace;
use super::InferError;

/// What a submission's caller receives: one embedding per image, in order.
pub(super) type Reply = Result<Vec<Vec<f32>>, InferError>;

/// When a batch leaves: as soon as it holds `max_batch_size` images, else `max_batch_wait` after
/// its first entry arrived.
#[derive(Debug, Clone, Copy)]
pub(super) struct BatchPolicy {
    pub max_batch_size: usize,
    pub max_batch_wait: Duration,
}

/// One submission. Its images always travel in one batch, so that both images of a pair see the
/// same worker and the same model state.
pub(super) struct Entry {
    pub inputs: Vec<Vec<f32>>,
    /// Inputs at the card's `location_input` size, answered with their located contributions rather than
    /// embeddings.
    pub locations: bool,
    /// Past this instant the entry is answered `DeadlineExceeded` instead of being computed.
    pub deadline: Instant,
    pub enqueued: Instant,
    reply: oneshot::Sender<Reply>,
    /// The queue capacity this entry holds until a worker takes it.
    slot: Option<QueueSlot>,
}

impl Entry {
    pub(super) fn images(&self) -> usize {
        self.inputs.len()
    }

    /// The caller stopped waiting (its request was cancelled or timed out): computing is wasted work.
    pub(super) fn caller_gone(&self) -> bool {
        self.reply.is_closed()
    }

    /// Frees the entry's queue capacity: a worker has it now.
    pub(super) fn leave_queue(&mut self) {
        self.slot = None;
    }

    pub(super) fn answer(self, reply: Reply) {
        // The caller may have gone since; then nobody wants the answer.
        let _ = self.reply.send(reply);
    }

    /// Answers and drops an entry that must not be computed (caller gone, deadline passed);
    /// hands back the others.
    pub(super) fn keep_if_wanted(self, now: Instant) -> Option<Entry> {
        if self.caller_gone() {
            None
        } else if now >= self.deadline {
            self.answer(Err(InferError::DeadlineExceeded));
            None
        } else {
            Some(self)
        }
    }
}

/// Entries that one forward pass computes together.
pub(super) struct Batch {
    pub entries: Vec<Entry>,
}

/// Queue capacity held by one entry; gives it back (and lowers the depth gauge) when dropped.
struct QueueSlot {
    _permit: OwnedSemaphorePermit,
    images: i64,
    depth: IntGauge,
}

impl Drop for QueueSlot {
    fn drop(&mut self) {
        self.depth.sub(self.images);
    }
}

/// The submitting side of a model's queue; cheap to clone.
#[derive(Clone)]
pub(super) struct Queue {
    entries: mpsc::UnboundedSender<Entry>,
    /// One permit per image of capacity: the channel itself is unbounded, this bounds it.
    slots: Arc<Semaphore>,
    capacity: usize,
    /// This model's `simverify_queue_depth{model}` series.
    depth: IntGauge,
    pace: Arc<Pace>,
}

impl Queue {
    /// A queue of `capacity` images; the receiver goes to [`assemble_batches`].
    pub(super) fn new(capacity: usize, depth: IntGauge, pace: Arc<Pace>) -> (Queue, mpsc::UnboundedReceiver<Entry>) {
        // Permits are taken as a u32 count, so that bounds the capacity too.
        let capacity = capacity.clamp(1, Semaphore::MAX_PERMITS.min(u32::MAX as usize));
        let (entries, receiver) = mpsc::unbounded_channel();
        let queue = Queue {
            entries,
            slots: Arc::new(Semaphore::new(capacity)),
            capacity,
            depth,
            pace,
        };
        (queue, receiver)
    }

    /// Enqueues `inputs` as one entry, or refuses at once when the queue lacks room for them.
    pub(super) fn submit(
        &self,
        inputs: Vec<Vec<f32>>,
        deadline: Instant,
    ) -> Result<oneshot::Receiver<Reply>, InferError> {
        self.enqueue(inputs, false, deadline)
    }

    /// Inputs at the card's `location_input` size, answered with their located contributions.
    pub(super) fn submit_with_locations(
        &self,
        inputs: Vec<Vec<f32>>,
        deadline: Instant,
    ) -> Result<oneshot::Receiver<Reply>, InferError> {
        self.enqueue(inputs, true, deadline)
    }

    fn enqueue(
        &self,
        inputs: Vec<Vec<f32>>,
        locations: bool,
        deadline: Instant,
    ) -> Result<oneshot::Receiver<Reply>, InferError> {
        // An entry larger than the whole queue takes the whole queue rather than never fitting.
        let images = inputs.len().clamp(1, self.capacity);
        let permit = Arc::clone(&self.slots)
            .try_acquire_many_owned(images as u32)
            .map_err(|_| InferError::Overloaded {
                retry_after: self.pace.retry_after(self.queued()),
            })?;
        self.depth.add(images as i64);
        let slot = QueueSlot {
            _permit: permit,
            images: images as i64,
            depth: self.depth.clone(),
        };
        let (reply, receiver) = oneshot::channel();
        let entry = Entry {
            inputs,
            locations,
            deadline,
            enqueued: Instant::now(),
            reply,
            slot: Some(slot),
        };
        // Fails only once the assembly task has stopped; the entry (and its slot) is dropped then.
        self.entries.send(entry).map_err(|_| InferError::WorkerGone)?;
        Ok(receiver)
    }

    /// Images admitted and not yet taken by a worker.
    pub(super) fn queued(&self) -> usize {
        self.capacity - self.slots.available_permits()
    }
}

/// Gathers entries into batches until the queue closes (every `Queue` clone dropped).
///
/// A batch opens with its first entry and leaves when it holds `max_batch_size` images, when the
/// next entry would not fit (that entry opens the next batch), or `max_batch_wait` after the first
/// entry arrived. An entry larger than `max_batch_size` travels alone. Entries whose caller has gone
/// or whose deadline has passed are dropped or answered here, not computed.
///
/// A batch is only opened once the hand-off to the workers has room: while every worker is busy,
/// entries wait in the queue, where the next batch still gathers them, so batches grow with the
/// load instead of being closed early and piling up.
pub(super) async fn assemble_batches(
    mut entries: mpsc::UnboundedReceiver<Entry>,
    batches: mpsc::Sender<Batch>,
    policy: BatchPolicy,
) {
    let max = policy.max_batch_size.max(1);
    let mut held_over: Option<Entry> = None;
    loop {
        let Ok(hand_off) = batches.reserve().await else {
            // The workers are gone; dropping the entries tells their callers so.
            return;
        };
        let first = match held_over.take() {
            Some(entry) => entry,
            None => match entries.recv().await {
                Some(entry) => entry,
                None => return,
            },
        };
        let Some(first) = first.keep_if_wanted(Instant::now()) else {
            continue;
        };
        let window_end = first.enqueued + policy.max_batch_wait;
        let mut images = first.images();
        let mut batch = vec![first];
        while images < max {
            let next = if Instant::now() >= window_end {
                // The window is over (or zero): take only what is already waiting, without a timer,
                // whose one-tick resolution would add latency for nothing.
                entries.try_recv().ok()
            } else {
                // Biased: entries already waiting join before the timer is looked at.
                tokio::select! {
                    biased;
                    next = entries.recv() => next,
                    () = sleep_until(window_end) => None,
                }
            };
            let Some(entry) = next else { break };
            let Some(entry) = entry.keep_if_wanted(Instant::now()) else {
                continue;
            };
            if images + entry.images() > max {
                held_over = Some(entry);
                break;
            }
            images += entry.images();
            batch.push(entry);
        }
        // Deadlines may have passed and callers gone during the window.
        let now = Instant::now();
        let batch: Vec<Entry> = batch.into_iter().filter_map(|e| e.keep_if_wanted(now)).collect();
        if !batch.is_empty() {
            hand_off.send(Batch { entries: batch });
        }
    }
}

#[cfg(test)]
mod tests;

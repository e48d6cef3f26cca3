//! The in-flight request limit's counter (`--max-in-flight`): places taken by requests doing work, given
//! back when their answer is ready. The `admission` middleware refuses a request when none is free.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Requests admitted and not yet answered, against their limit; shared by every request.
#[derive(Debug)]
pub(crate) struct InFlight {
    count: Arc<AtomicUsize>,
    max: usize,
}

impl InFlight {
    pub(crate) fn new(max: usize) -> Self {
        Self {
            count: Arc::new(AtomicUsize::new(0)),
            max: max.max(1),
        }
    }

    /// A place for one more request, or `None` when every place is taken.
    pub(crate) fn try_enter(&self) -> Option<Admitted> {
        let before = self.count.fetch_add(1, Ordering::SeqCst);
        if before >= self.max {
            self.count.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        Some(Admitted(Arc::clone(&self.count)))
    }
}

/// One admitted request's place; given back when its answer is ready (or the request is dropped).
pub(crate) struct Admitted(Arc<AtomicUsize>);

impl Drop for Admitted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_are_given_back() {
        let limit = InFlight::new(2);
        let a = limit.try_enter().expect("first");
        let _b = limit.try_enter().expect("second");

        assert!(limit.try_enter().is_none(), "full");
        drop(a);
        assert!(limit.try_enter().is_some(), "a place was freed");
    }
}

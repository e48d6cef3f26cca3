//! Progress of a long embedding run: a bar with images/s and time left on a terminal, plain lines
//! (every few seconds) when standard error is a file or a pipe, where a bar would be noise.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// How often a plain progress line is written.
const LINE_EVERY: Duration = Duration::from_secs(10);

pub(crate) struct Progress {
    total: u64,
    started: Instant,
    style: Style,
}

enum Style {
    Bar(ProgressBar),
    /// Done so far, and when the last line was written.
    Lines(Mutex<(u64, Instant)>),
}

impl Progress {
    pub(crate) fn new(total: u64) -> Self {
        let started = Instant::now();
        let style = if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new(total);
            bar.set_style(
                ProgressStyle::with_template("{bar:40} {pos}/{len} images, {per_sec}, {eta} left")
                    .expect("the template is valid"),
            );
            Style::Bar(bar)
        } else {
            Style::Lines(Mutex::new((0, started)))
        };
        Self { total, started, style }
    }

    /// `count` more images done.
    pub(crate) fn advance(&self, count: u64) {
        match &self.style {
            Style::Bar(bar) => bar.inc(count),
            Style::Lines(state) => {
                let mut state = state.lock().expect("the progress lock is never poisoned");
                state.0 += count;
                if state.1.elapsed() >= LINE_EVERY {
                    state.1 = Instant::now();
                    eprintln!("{}", self.line(state.0));
                }
            }
        }
    }

    pub(crate) fn finish(&self) {
        match &self.style {
            Style::Bar(bar) => bar.finish_and_clear(),
            Style::Lines(state) => {
                let done = state.lock().expect("the progress lock is never poisoned").0;
                eprintln!("{}", self.line(done));
            }
        }
    }

    fn line(&self, done: u64) -> String {
        let seconds = self.started.elapsed().as_secs_f64();
        let rate = done as f64 / seconds.max(1e-3);
        let left = (self.total.saturating_sub(done)) as f64 / rate.max(1e-9);
        format!(
            "{done}/{} images, {rate:.1} images/s, about {left:.0} s left",
            self.total
        )
    }
}

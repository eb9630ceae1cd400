//! Progress on stderr: an indicatif bar on a terminal (done/total, rate, ETA, failures), plain
//! periodic lines otherwise (CI logs), so long runs always show they are alive.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use std::io::Write as _;

use crate::text::thousands;

/// How often plain progress lines are printed.
pub const LINE_EVERY: Duration = Duration::from_secs(2);

/// A progress display for `total` things.
pub struct ProgressOut {
    bar: Option<ProgressBar>,
    /// `--quiet`: nothing at all.
    quiet: bool,
    what: &'static str,
    total: u64,
    last_line: Mutex<Instant>,
}

impl ProgressOut {
    /// A bar when stderr is a terminal, periodic lines otherwise, nothing with `--quiet`.
    pub fn new(what: &'static str, total: u64, ui: &super::Ui) -> Self {
        let bar = (!ui.quiet && super::stderr_is_terminal()).then(|| {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template(
                "{spinner} [{bar:30}] {human_pos}/{human_len} {prefix} {rate} ETA {eta} {msg}",
            )
            .map(|s| {
                s.with_key(
                    "rate",
                    |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                        let _ = w.write_str(&crate::text::per_second_text(state.per_sec()));
                    },
                )
            })
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            bar.set_style(style);
            bar.set_prefix(what);
            bar
        });
        Self {
            bar,
            quiet: ui.quiet,
            what,
            total,
            last_line: Mutex::new(Instant::now()),
        }
    }

    /// Moves to `pos`; `message` (failures, rate) is only built when it will be shown.
    pub fn update(&self, pos: u64, message: impl FnOnce() -> String) {
        if self.quiet {
            return;
        }
        if let Some(bar) = &self.bar {
            bar.set_position(pos);
            bar.set_message(message());
            return;
        }
        let mut last = self
            .last_line
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if last.elapsed() >= LINE_EVERY {
            *last = Instant::now();
            // A closed stderr must not end the run: the write error is ignored.
            let _ = writeln!(
                std::io::stderr().lock(),
                "  {} {}/{} {}",
                self.what,
                thousands(pos),
                thousands(self.total),
                message()
            );
        }
    }

    /// Clears the bar.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

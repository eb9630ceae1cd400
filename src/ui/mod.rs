//! What a command prints and how: standard output for the views and results a person or a
//! program asked for, standard error for progress, notes and warnings. [`Ui`] holds the
//! `--quiet` and `--color` decisions so no command reads flags or the environment for them.
//!
//! Broken pipes: stdout writes go through [`stdout`] and return their `io::Error` (never
//! `println!`, which panics on a closed pipe); an `EPIPE` there is marked
//! [`crate::exit::StdoutClosed`], which `exit::for_error` turns into a quiet exit 0, as `head`
//! closing its end is the reader saying "enough". stderr writes ignore
//! errors: a closed stderr (`2>&1 | head`) must not turn a warning into a failure.

use std::fmt::Display;
use std::io::{IsTerminal as _, Write as _};

pub mod progress;

/// True when standard error is a terminal (progress bars) — plain lines otherwise.
pub fn stderr_is_terminal() -> bool {
    std::io::stderr().is_terminal()
}

/// Tells the person running idprune, on stderr, that it is waiting because the server asked it
/// to ([`crate::retry::LONG_RETRY_AFTER`] or longer), so a long wait is never silent. Callers
/// call it just before they sleep; it prints even with `--quiet` (the reader and the executor
/// hold no [`Ui`]).
pub fn say_waiting(delay: std::time::Duration) {
    if delay >= crate::retry::LONG_RETRY_AFTER {
        let _ = writeln!(
            std::io::stderr().lock(),
            "idprune: Segment asked to retry later (429 or 5xx with `Retry-After`); waiting {} s",
            delay.as_secs()
        );
    }
}

/// The environment variable that turns colour off when set and not empty (no-color.org).
pub const NO_COLOR_ENV: &str = "NO_COLOR";

/// A colour for [`Ui::paint`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Paint {
    /// Removals.
    Red,
    /// Things done.
    Green,
    /// Things to look at.
    Yellow,
    /// Less important text.
    Dim,
    /// Headings.
    Bold,
}

impl Paint {
    fn code(self) -> &'static str {
        match self {
            Self::Red => "31",
            Self::Green => "32",
            Self::Yellow => "33",
            Self::Dim => "2",
            Self::Bold => "1",
        }
    }
}

/// The output decisions of one command.
#[derive(Clone, Copy, Debug, Default)]
pub struct Ui {
    /// `--quiet`: errors only on stderr; no human summary on stdout.
    pub quiet: bool,
    /// Colour on stdout.
    pub color: bool,
    /// Colour on stderr.
    pub err_color: bool,
}

impl Ui {
    /// The decisions for `--quiet` and `--color` (`Some`: always or never; `None`: auto, with
    /// `NO_COLOR` and the terminals looked at now).
    pub fn new(quiet: bool, color: Option<bool>) -> Self {
        let no_color = std::env::var_os(NO_COLOR_ENV).is_some_and(|v| !v.is_empty());
        let decide = |terminal: bool| match color {
            Some(always) => always,
            None => terminal && !no_color,
        };
        Self {
            quiet,
            color: decide(std::io::stdout().is_terminal()),
            err_color: decide(std::io::stderr().is_terminal()),
        }
    }

    /// `text` in `paint` when stdout is coloured.
    pub fn paint(&self, paint: Paint, text: impl Display) -> String {
        paint_if(self.color, paint, text)
    }

    /// One line on stdout, always (a view or result that was asked for). A closed stdout comes
    /// back as a [`crate::exit::StdoutClosed`] error.
    pub fn out(&self, line: impl Display) -> std::io::Result<()> {
        let mut out = stdout();
        writeln!(out, "{line}")?;
        out.flush()
    }

    /// One line on stdout unless `--quiet` (a human summary of what was done).
    pub fn say(&self, line: impl Display) -> std::io::Result<()> {
        if self.quiet {
            return Ok(());
        }
        self.out(line)
    }

    /// One line on stderr unless `--quiet`: progress and notes. Write errors are ignored.
    pub fn note(&self, line: impl Display) {
        if !self.quiet {
            let _ = writeln!(std::io::stderr().lock(), "{line}");
        }
    }

    /// `warning: TEXT` on stderr unless `--quiet`. Write errors are ignored.
    pub fn warn(&self, text: impl Display) {
        if !self.quiet {
            let label = paint_if(self.err_color, Paint::Yellow, "warning:");
            let _ = writeln!(std::io::stderr().lock(), "{label} {text}");
        }
    }

    /// One line on stderr even with `--quiet`: what must not go unseen (a suspicious plan, a
    /// receipt written or checked, a state file git would commit). Write errors are ignored.
    pub fn shout(&self, line: impl Display) {
        let _ = writeln!(std::io::stderr().lock(), "{line}");
    }

    /// Text on stderr without a newline (a prompt), even with `--quiet`: the person must see
    /// what they are asked.
    pub fn prompt(&self, text: impl Display) {
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "{text}");
        let _ = err.flush();
    }
}

/// Standard output, locked, whose `BrokenPipe` errors carry [`crate::exit::StdoutClosed`]:
/// only a closed *stdout* ends a command quietly, never a broken connection elsewhere.
pub fn stdout() -> Stdout {
    Stdout(std::io::stdout().lock())
}

/// See [`stdout`].
pub struct Stdout(std::io::StdoutLock<'static>);

fn mark(e: std::io::Error) -> std::io::Error {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::io::Error::new(std::io::ErrorKind::BrokenPipe, crate::exit::StdoutClosed)
    } else {
        e
    }
}

impl std::io::Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf).map_err(mark)
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.0.write_all(buf).map_err(mark)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush().map_err(mark)
    }
}

/// `text` wrapped in the ANSI escape of `paint` when `on`.
pub fn paint_if(on: bool, paint: Paint, text: impl Display) -> String {
    if on {
        format!("\u{1b}[{}m{text}\u{1b}[0m", paint.code())
    } else {
        text.to_string()
    }
}

/// A writer that colours a text plan line by line as it streams through: removals red,
/// warnings yellow, headings and the summary bold. With colour off it passes bytes through
/// untouched, so the uncoloured output is byte-for-byte what the renderer wrote.
pub struct Colored<W: std::io::Write> {
    inner: W,
    on: bool,
    line: Vec<u8>,
}

impl<W: std::io::Write> Colored<W> {
    /// Wraps `inner`; `on` is [`Ui::color`].
    pub fn new(inner: W, on: bool) -> Self {
        Self {
            inner,
            on,
            line: Vec::new(),
        }
    }

    fn paint_line(&mut self) -> std::io::Result<()> {
        let line = std::mem::take(&mut self.line);
        let text = String::from_utf8_lossy(&line);
        let body = text.trim_end_matches('\n');
        let paint = if body.starts_with("- ") || body.starts_with("-\t") {
            Some(Paint::Red)
        } else if body.starts_with("warning:") {
            Some(Paint::Yellow)
        } else if body.starts_with("Plan:")
            || body.starts_with("Progress:")
            || body == "Not sent:"
            || body == "Check these:"
            || body.starts_with("profile ")
        {
            Some(Paint::Bold)
        } else {
            None
        };
        match paint {
            Some(p) if !body.is_empty() => {
                self.inner.write_all(paint_if(true, p, body).as_bytes())?;
                if text.ends_with('\n') {
                    self.inner.write_all(b"\n")?;
                }
                Ok(())
            }
            _ => self.inner.write_all(&line),
        }
    }
}

impl<W: std::io::Write> std::io::Write for Colored<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if !self.on {
            return self.inner.write(buf);
        }
        for &b in buf {
            self.line.push(b);
            if b == b'\n' {
                self.paint_line()?;
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if !self.line.is_empty() {
            self.paint_line()?;
        }
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paint_only_when_on() {
        assert_eq!(paint_if(false, Paint::Red, "x"), "x");
        assert_eq!(paint_if(true, Paint::Red, "x"), "\u{1b}[31mx\u{1b}[0m");
    }

    #[test]
    fn colored_lines() {
        let mut out = Colored::new(Vec::new(), true);
        out.write_all(b"profile user_id:u\n-   email:a   #1\n    email:b\n")
            .expect("write");
        out.flush().expect("flush");
        let text = String::from_utf8(out.inner).expect("utf-8");
        assert_eq!(
            text,
            "\u{1b}[1mprofile user_id:u\u{1b}[0m\n\u{1b}[31m-   email:a   #1\u{1b}[0m\n    email:b\n"
        );
        let mut plain = Colored::new(Vec::new(), false);
        plain.write_all(b"-   email:a\n").expect("write");
        assert_eq!(plain.inner, b"-   email:a\n");
    }

    #[test]
    fn never_and_always() {
        assert!(!Ui::new(false, Some(false)).color);
        assert!(Ui::new(false, Some(true)).color);
    }
}

//! The one door to standard output and standard error: every command writes through [`Output`].
//!
//! Rust ignores `SIGPIPE`, so when the reader of a pipe goes away (`herald plan … | head`) the
//! next write fails with `BrokenPipe`, and `println!` turns any write error into a panic (exit
//! 101). The rules instead:
//! - **Stdout closed by its reader** (`BrokenPipe`): the rest of the output is dropped without a
//!   word and the command carries on to the exit code it would have had, so a pipeline's `head`
//!   neither hides a failed validation nor turns a finished run into an error.
//! - **Any other stdout error** (a full disk, an I/O error): an [`OutputError`], which the command
//!   returns; `main` prints it and exits 2. The output is incomplete, so it must not look like a
//!   success.
//! - **Stderr errors** are ignored: there is nowhere left to report them, and the exit code still
//!   tells. Never a panic either way.
//!
//! `SIGPIPE` stays ignored (Rust's default) on purpose: its default action would kill the process,
//! so the shell would see 141 instead of the command's own exit code, and a `herald run` printing
//! its summary would die with a signal after finishing its work.
//!
//! Stdout is buffered (`plan` writes a line per recipient) and flushed before anything goes to
//! stderr, and after every write when it is a terminal, so the two streams interleave in the
//! order they were written, in a terminal and in `> log 2>&1` alike.

use std::fmt;
use std::io::{self, BufWriter, IsTerminal, Stderr, Stdout, Write};

/// Writing to stdout failed for a reason other than a closed pipe.
#[derive(Debug)]
pub(crate) struct OutputError(io::Error);

impl fmt::Display for OutputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot write to standard output: {}", self.0)
    }
}

impl std::error::Error for OutputError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// Standard output and standard error of the process, with the rules of the module docs.
pub(crate) struct Output {
    stdout: BufWriter<Box<dyn Write>>,
    /// Flush after every write: a person is watching.
    stdout_is_terminal: bool,
    state: State,
    stderr: Box<dyn Write>,
}

#[derive(Debug, PartialEq, Eq)]
enum State {
    Open,
    /// The reader went away: everything else is dropped.
    Closed,
    /// A write failed; kept so that every later write reports the same failure.
    Failed {
        kind: io::ErrorKind,
        said: String,
    },
}

impl Output {
    /// The process's own streams.
    pub(crate) fn process() -> Output {
        let stdout: Stdout = io_stdout();
        let stderr: Stderr = io_stderr();
        let stdout_is_terminal = stdout.is_terminal();
        Output::new(Box::new(stdout), stdout_is_terminal, Box::new(stderr))
    }

    fn new(stdout: Box<dyn Write>, stdout_is_terminal: bool, stderr: Box<dyn Write>) -> Output {
        Output {
            stdout: BufWriter::new(stdout),
            stdout_is_terminal,
            state: State::Open,
            stderr,
        }
    }

    /// The target of `write!(out, …)` and `writeln!(out, …)`: formats to stdout.
    pub(crate) fn write_fmt(&mut self, args: fmt::Arguments<'_>) -> Result<(), OutputError> {
        self.write_with(|stdout| stdout.write_fmt(args))
    }

    /// Writes `bytes` to stdout as they are.
    pub(crate) fn write_all(&mut self, bytes: &[u8]) -> Result<(), OutputError> {
        self.write_with(|stdout| stdout.write_all(bytes))
    }

    /// Whether stdout is a terminal (help is styled only there).
    pub(crate) fn is_terminal(&self) -> bool {
        self.stdout_is_terminal
    }

    /// True once stdout's reader has gone away: callers may skip formatting what nobody reads.
    pub(crate) fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// Stderr, for diagnostics: `writeln!(out.stderr(), …)`. Flushes stdout first, so what was
    /// written before shows before. A stdout failure met on the way is kept for the next stdout
    /// write or [`Output::finish`].
    pub(crate) fn stderr(&mut self) -> Diagnostics<'_> {
        // A failure is kept in `state`, to be reported by the next stdout write or `finish`.
        let _ = self.write_with(Write::flush);
        Diagnostics(&mut self.stderr)
    }

    /// Flushes stdout: call once at the end. `Ok` also when the reader has gone away.
    pub(crate) fn finish(&mut self) -> Result<(), OutputError> {
        self.write_with(Write::flush)
    }

    fn write_with(
        &mut self,
        write: impl FnOnce(&mut BufWriter<Box<dyn Write>>) -> io::Result<()>,
    ) -> Result<(), OutputError> {
        match self.state {
            State::Closed => return Ok(()),
            State::Failed { kind, ref said } => {
                return Err(OutputError(io::Error::new(kind, said.clone())));
            }
            State::Open => {}
        }
        let mut result = write(&mut self.stdout);
        if result.is_ok() && self.stdout_is_terminal {
            result = self.stdout.flush();
        }
        self.settle(result)
    }

    /// Moves to `Closed` or `Failed` by the error's kind.
    fn settle(&mut self, result: io::Result<()>) -> Result<(), OutputError> {
        match result {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == io::ErrorKind::BrokenPipe => {
                self.state = State::Closed;
                // The buffer's rest can never be written; drop it so nothing retries.
                let _ = std::mem::replace(&mut self.stdout, BufWriter::new(Box::new(io::sink())))
                    .into_parts();
                Ok(())
            }
            Err(error) => {
                self.state = State::Failed {
                    kind: error.kind(),
                    said: error.to_string(),
                };
                Err(OutputError(error))
            }
        }
    }
}

/// Stderr through [`Output::stderr`]; write errors are ignored (see the module docs).
pub(crate) struct Diagnostics<'a>(&'a mut Box<dyn Write>);

impl Diagnostics<'_> {
    /// The target of `writeln!(out.stderr(), …)`.
    pub(crate) fn write_fmt(&mut self, args: fmt::Arguments<'_>) {
        let _ = self.0.write_fmt(args);
        let _ = self.0.flush();
    }
}

/// The only place the process's stdout is opened.
#[allow(clippy::disallowed_methods)]
fn io_stdout() -> Stdout {
    io::stdout()
}

/// The only place the process's stderr is opened (logs use it through [`log_writer`]).
#[allow(clippy::disallowed_methods)]
fn io_stderr() -> Stderr {
    io::stderr()
}

/// Where `tracing` writes: stderr, unbuffered. Its write errors are dropped by the subscriber
/// (`log_internal_errors(false)`), never printed or panicked on.
pub(crate) fn log_writer() -> Stderr {
    io_stderr()
}

/// Whether stderr is a terminal (colours go only there).
pub(crate) fn stderr_is_terminal() -> bool {
    io_stderr().is_terminal()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A writer that fails with `kind` after `accept` bytes, recording what it took.
    #[derive(Clone)]
    struct Failing {
        taken: Arc<Mutex<Vec<u8>>>,
        accept: usize,
        kind: io::ErrorKind,
    }

    impl Write for Failing {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let mut taken = self.taken.lock().unwrap();
            let room = self.accept.saturating_sub(taken.len());
            if room == 0 {
                return Err(io::Error::from(self.kind));
            }
            let n = room.min(buf.len());
            taken.extend_from_slice(&buf[..n]);
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn output(accept: usize, kind: io::ErrorKind, terminal: bool) -> (Output, Failing) {
        let sink = Failing {
            taken: Arc::default(),
            accept,
            kind,
        };
        let out = Output::new(Box::new(sink.clone()), terminal, Box::new(io::sink()));
        (out, sink)
    }

    #[test]
    fn a_closed_pipe_drops_the_rest_quietly() {
        for terminal in [false, true] {
            let (mut out, sink) = output(4, io::ErrorKind::BrokenPipe, terminal);
            for _ in 0..10_000 {
                writeln!(out, "line").unwrap();
            }
            out.finish().unwrap();
            assert!(out.is_closed());
            assert_eq!(sink.taken.lock().unwrap().as_slice(), b"line");
        }
    }

    #[test]
    fn any_other_error_is_reported_and_stays_reported() {
        for terminal in [false, true] {
            let (mut out, _) = output(0, io::ErrorKind::StorageFull, terminal);
            let mut first = None;
            for _ in 0..10_000 {
                if let Err(e) = writeln!(out, "line") {
                    first = Some(e);
                    break;
                }
            }
            let first = first.or_else(|| out.finish().err()).unwrap();
            assert_eq!(first.0.kind(), io::ErrorKind::StorageFull);
            assert!(
                first
                    .to_string()
                    .starts_with("cannot write to standard output")
            );
            assert!(writeln!(out, "more").is_err());
            assert!(out.finish().is_err());
        }
    }

    #[test]
    fn stderr_flushes_stdout_first_and_keeps_its_failure_for_later() {
        let (mut out, sink) = output(100, io::ErrorKind::StorageFull, false);
        writeln!(out, "before").unwrap();
        writeln!(out.stderr(), "diagnostic");
        assert_eq!(sink.taken.lock().unwrap().as_slice(), b"before\n");
        let (mut out, _) = output(0, io::ErrorKind::StorageFull, false);
        writeln!(out, "lost").unwrap();
        writeln!(out.stderr(), "diagnostic");
        assert!(out.finish().is_err());
    }
}

//! The command's output streams. A closed pipe (`strata images | head -1`) ends the command quietly
//! with success, as `head` expects of the programs it reads; Rust's `println!` would panic instead.

use std::fmt;
use std::io::{self, Write};

/// The reader of standard output went away: the command stops here and exits quietly.
#[derive(Debug)]
pub struct StdoutClosed;

impl fmt::Display for StdoutClosed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("standard output was closed")
    }
}

impl std::error::Error for StdoutClosed {}

/// Write `text` to standard output; a closed pipe becomes [`StdoutClosed`].
pub fn write_stdout(text: &str) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Err(StdoutClosed.into()),
        Err(e) => Err(anyhow::Error::new(e).context("cannot write to standard output")),
        Ok(()) => Ok(()),
    }
}

/// Write one formatted line to standard output (see [`write_stdout`]).
pub fn line(args: fmt::Arguments<'_>) -> anyhow::Result<()> {
    let mut text = args.to_string();
    text.push('\n');
    write_stdout(&text)
}

/// Write one formatted line to standard error; a closed or failing stderr is ignored (there is
/// nowhere left to report it).
pub fn err_line(args: fmt::Arguments<'_>) {
    let _ = writeln!(io::stderr().lock(), "{args}");
}

/// `println!` that ends the command quietly on a closed pipe: `outln!(...)?`-free, it returns early
/// from the enclosing function (which must return `anyhow::Result`).
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::out::line(format_args!($($arg)*))?
    };
}

/// `eprintln!` that never panics.
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::out::err_line(format_args!($($arg)*))
    };
}

pub(crate) use {errln, outln};

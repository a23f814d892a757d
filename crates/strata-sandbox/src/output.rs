//! Where a command's output goes: a caller-supplied sink, and a tail kept for error messages.

use std::collections::VecDeque;
use std::io::Write;

/// Which stream bytes came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// Receives the command's output live, in chunks as they arrive.
pub trait Output {
    /// `bytes` were written by the command on `stream`.
    fn output(&mut self, stream: Stream, bytes: &[u8]);
}

impl<F: FnMut(Stream, &[u8])> Output for F {
    fn output(&mut self, stream: Stream, bytes: &[u8]) {
        self(stream, bytes)
    }
}

/// Drops the output (the tail is still kept).
#[derive(Debug, Default, Clone, Copy)]
pub struct Discard;

impl Output for Discard {
    fn output(&mut self, _: Stream, _: &[u8]) {}
}

/// Writes both streams to one writer (write errors are ignored: output is advisory).
#[derive(Debug)]
pub struct ToWriter<W: Write>(pub W);

impl<W: Write> Output for ToWriter<W> {
    fn output(&mut self, _: Stream, bytes: &[u8]) {
        let _ = self.0.write_all(bytes);
        let _ = self.0.flush();
    }
}

/// The last `keep` lines of both streams, interleaved as they arrived (per stream, partial lines
/// are joined before being counted). Long lines are cut at 4 KiB.
#[derive(Debug)]
pub struct Tail {
    keep: usize,
    lines: VecDeque<String>,
    partial: [Vec<u8>; 2],
}

const MAX_LINE: usize = 4096;

impl Tail {
    /// Keep the last `keep` lines.
    pub fn new(keep: usize) -> Self {
        Tail {
            keep,
            lines: VecDeque::new(),
            partial: [Vec::new(), Vec::new()],
        }
    }

    /// Add a chunk of `stream`.
    pub fn push(&mut self, stream: Stream, bytes: &[u8]) {
        let i = stream as usize;
        for &b in bytes {
            if b == b'\n' {
                let line = std::mem::take(&mut self.partial[i]);
                self.add(line);
            } else if self.partial[i].len() < MAX_LINE {
                self.partial[i].push(b);
            }
        }
    }

    fn add(&mut self, line: Vec<u8>) {
        if self.keep == 0 {
            return;
        }
        if self.lines.len() == self.keep {
            self.lines.pop_front();
        }
        self.lines
            .push_back(String::from_utf8_lossy(&line).into_owned());
    }

    /// The kept lines, unterminated last lines included.
    pub fn finish(mut self) -> Vec<String> {
        for i in 0..2 {
            let rest = std::mem::take(&mut self.partial[i]);
            if !rest.is_empty() {
                self.add(rest);
            }
        }
        self.lines.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_last_lines_across_chunks() {
        let mut t = Tail::new(2);
        t.push(Stream::Stdout, b"one\ntw");
        t.push(Stream::Stderr, b"err\n");
        t.push(Stream::Stdout, b"o\nthree");
        assert_eq!(t.finish(), vec!["two".to_string(), "three".into()]);
        let mut t = Tail::new(5);
        t.push(Stream::Stdout, &vec![b'x'; 10_000]);
        assert_eq!(t.finish()[0].len(), MAX_LINE);
    }
}

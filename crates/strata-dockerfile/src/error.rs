//! The one error type: a message located at a line and column, naming the instruction.

use std::fmt;

/// A Dockerfile error located in the source.
///
/// `Display` is one line, `LINE:COL: INSTRUCTION: message` (or `LINE:COL: message` when no
/// instruction is involved); the caller prefixes the file name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Error {
    line: usize,
    column: usize,
    instruction: Option<String>,
    message: String,
}

impl Error {
    /// An error at `line:column` (both 1-based) in `instruction` (upper case keyword).
    pub fn new(
        line: usize,
        column: usize,
        instruction: Option<&str>,
        message: impl Into<String>,
    ) -> Self {
        Error {
            line,
            column,
            instruction: instruction.map(str::to_string),
            message: message.into(),
        }
    }

    /// The 1-based line.
    pub fn line(&self) -> usize {
        self.line
    }

    /// The 1-based column (in characters).
    pub fn column(&self) -> usize {
        self.column
    }

    /// The instruction keyword, upper case, when the error is inside one.
    pub fn instruction(&self) -> Option<&str> {
        self.instruction.as_deref()
    }

    /// The message without the location.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: ", self.line, self.column)?;
        if let Some(i) = &self.instruction {
            write!(f, "{i}: ")?;
        }
        // keep it one line whatever the message holds
        for (i, part) in self.message.split('\n').enumerate() {
            if i > 0 {
                f.write_str("\\n")?;
            }
            f.write_str(part)?;
        }
        Ok(())
    }
}

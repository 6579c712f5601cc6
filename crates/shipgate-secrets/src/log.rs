//! A `tracing-subscriber` writer that masks every known secret value in each log line before
//! it reaches the terminal or a file, whatever field or message carried it, and keeps each
//! event on one line with its control characters shown as escapes (a field holding a
//! server's text cannot recolour the terminal or forge a log line).

use std::io::{self, Write};

use shipgate_core::{Redactor, one_line};
use tracing_subscriber::fmt::MakeWriter;

/// Wraps a writer factory; each formatted event is redacted and made one printable line, then
/// written whole.
#[derive(Debug, Clone)]
pub struct RedactingMakeWriter<M> {
    inner: M,
    redactor: Redactor,
}

impl<M> RedactingMakeWriter<M> {
    /// Masks the values of `redactor` (shared: values added later are masked too).
    pub fn new(inner: M, redactor: Redactor) -> Self {
        RedactingMakeWriter { inner, redactor }
    }
}

/// Buffers one event and writes it redacted when dropped.
pub struct RedactingWriter<W: Write> {
    inner: W,
    redactor: Redactor,
    buffer: Vec<u8>,
}

impl<W: Write> Write for RedactingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.buffer.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&self.buffer);
        let redacted = self.redactor.redact(&text);
        let event = redacted.strip_suffix('\n').unwrap_or(&redacted);
        self.inner.write_all(one_line(event).as_bytes())?;
        self.inner.write_all(b"\n")?;
        self.buffer.clear();
        self.inner.flush()
    }
}

impl<W: Write> Drop for RedactingWriter<W> {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for RedactingMakeWriter<M> {
    type Writer = RedactingWriter<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        RedactingWriter {
            inner: self.inner.make_writer(),
            redactor: self.redactor.clone(),
            buffer: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shipgate_core::Secret;

    #[test]
    fn an_event_is_written_redacted_on_one_printable_line() {
        let redactor = Redactor::default();
        redactor.add(&Secret::new("log-canary-93f1"));
        let mut sink = Vec::new();
        {
            let mut writer = RedactingWriter {
                inner: &mut sink,
                redactor,
                buffer: Vec::new(),
            };
            writer
                .write_all(b"WARN body: log-canary-93f1\n\x1b[32mINFO smoke passed\x07\n")
                .unwrap();
        }
        assert_eq!(
            String::from_utf8(sink).unwrap(),
            "WARN body: [redacted]\\u{a}\\u{1b}[32mINFO smoke passed\\u{7}\n"
        );
    }
}

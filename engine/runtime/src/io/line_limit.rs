//! A bound on the length of an input line.
//!
//! CSV and JSON readers hold a whole record in memory, and grow their buffers to fit it:
//! one 300 MB line without a newline cost gigabytes before this bound. Market data rows
//! are a few hundred bytes; a line past [`MAX_LINE_BYTES`] is an error naming the line.

use std::io::Read;

/// The longest input line accepted: 1 MiB.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// A reader that fails once a line runs past a length without a newline.
#[derive(Debug)]
pub struct LineLimit<R> {
    inner: R,
    limit: usize,
    /// Bytes since the last newline.
    run: usize,
    /// Newlines passed, for the message.
    lines: u64,
}

impl<R: Read> LineLimit<R> {
    /// Wraps `inner`, allowing lines of at most `limit` bytes.
    pub fn new(inner: R, limit: usize) -> Self {
        LineLimit {
            inner,
            limit,
            run: 0,
            lines: 0,
        }
    }
}

impl<R: Read> Read for LineLimit<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut start = 0;
        for newline in memchr::memchr_iter(b'\n', &buf[..n]) {
            if self.run + (newline - start) > self.limit {
                return Err(self.too_long());
            }
            self.run = 0;
            self.lines += 1;
            start = newline + 1;
        }
        self.run += n - start;
        if self.run > self.limit {
            return Err(self.too_long());
        }
        Ok(n)
    }
}

impl<R> LineLimit<R> {
    fn too_long(&self) -> std::io::Error {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "line {} is longer than {} MiB, the longest line read (is this a CSV or JSON-lines file?)",
                self.lines + 1,
                self.limit >> 20
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(text: &[u8], limit: usize, chunk: usize) -> std::io::Result<Vec<u8>> {
        // A source that returns at most `chunk` bytes a read, to cross lines over reads.
        struct Trickle<'a>(&'a [u8], usize);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let n = self.0.len().min(self.1).min(buf.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut out = Vec::new();
        LineLimit::new(Trickle(text, chunk), limit).read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn lines_within_the_limit_pass_unchanged() {
        let text = b"ts,v\n1,2\n3,4\nlast";
        for chunk in [1, 3, 7, 100] {
            assert_eq!(read_all(text, 4, chunk).unwrap(), text, "chunk {chunk}");
        }
    }

    #[test]
    fn a_long_line_is_refused_with_its_number_wherever_reads_split_it() {
        for (name, text) in [
            ("first line", &b"ts,value\n"[..]),
            ("middle line", b"ts\n1\n123456789\n2\n"),
            ("last line without newline", b"ts\n1\n123456789"),
        ] {
            for chunk in [1, 2, 5, 64] {
                let err = read_all(text, 6, chunk).expect_err(name);
                assert_eq!(err.kind(), std::io::ErrorKind::InvalidData, "{name}");
                let want = if name == "first line" {
                    "line 1 "
                } else {
                    "line 3 "
                };
                assert!(
                    err.to_string().contains(want),
                    "{name}, chunk {chunk}: {err}"
                );
            }
        }
    }
}

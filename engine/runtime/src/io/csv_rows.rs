//! Inputs that are not CSV (JSON lines, exchange feeds) turned into CSV rows as they are
//! read, so that every input goes through the one CSV reader, its policies and messages.

use std::io::Read;

/// A source of CSV text, a row at a time.
pub(super) trait CsvRows {
    /// Appends the next row (the header first, before the first row) to `out`; false at
    /// the end.
    fn next_row(&mut self, out: &mut Vec<u8>) -> std::io::Result<bool>;
}

/// The rows of a [`CsvRows`] as a byte stream.
pub(super) struct CsvStream<S> {
    rows: S,
    out: Vec<u8>,
    pos: usize,
}

impl<S> CsvStream<S> {
    pub(super) fn new(rows: S) -> Self {
        CsvStream {
            rows,
            out: Vec::new(),
            pos: 0,
        }
    }
}

impl<S: CsvRows> Read for CsvStream<S> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.pos == self.out.len() {
            self.out.clear();
            self.pos = 0;
            if !self.rows.next_row(&mut self.out)? {
                return Ok(0);
            }
        }
        let n = buf.len().min(self.out.len() - self.pos);
        buf[..n].copy_from_slice(&self.out[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

//! A byte layout for detector state ([`Detector::save`](crate::Detector::save)): little-endian
//! words, each vector prefixed by its length, read back with every length and the end
//! checked, so a damaged state is refused instead of misread.

use crate::{DetectorError, ErrorKind};

/// Appends words to a state.
#[derive(Debug, Default)]
pub struct Writer {
    /// The bytes so far.
    pub bytes: Vec<u8>,
}

impl Writer {
    /// Appends a count.
    pub fn count(&mut self, n: usize) {
        self.bytes.extend_from_slice(&(n as u64).to_le_bytes());
    }

    /// Appends a number.
    pub fn number(&mut self, x: f64) {
        self.bytes.extend_from_slice(&x.to_le_bytes());
    }

    /// Appends a vector of numbers, its length first.
    pub fn numbers(&mut self, xs: &[f64]) {
        self.count(xs.len());
        xs.iter().for_each(|&x| self.number(x));
    }
}

/// Reads a state written by a [`Writer`].
#[derive(Debug)]
pub struct Reader<'a> {
    bytes: &'a [u8],
}

fn corrupt(why: String) -> DetectorError {
    DetectorError::new(
        ErrorKind::IncompatibleState,
        format!("state is corrupt: {why}"),
    )
}

impl<'a> Reader<'a> {
    /// A reader of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes }
    }

    fn word(&mut self) -> Result<[u8; 8], DetectorError> {
        let (head, rest) = self
            .bytes
            .split_first_chunk::<8>()
            .ok_or_else(|| corrupt(format!("it ends early ({} bytes left)", self.bytes.len())))?;
        self.bytes = rest;
        Ok(*head)
    }

    /// Reads a count, at most `limit`.
    ///
    /// # Errors
    ///
    /// A truncated state or a count over `limit`.
    pub fn count(&mut self, limit: usize) -> Result<usize, DetectorError> {
        let n = u64::from_le_bytes(self.word()?);
        usize::try_from(n)
            .ok()
            .filter(|&n| n <= limit)
            .ok_or_else(|| corrupt(format!("a count of {n}, at most {limit} expected")))
    }

    /// Reads a number.
    ///
    /// # Errors
    ///
    /// A truncated state.
    pub fn number(&mut self) -> Result<f64, DetectorError> {
        Ok(f64::from_le_bytes(self.word()?))
    }

    /// Reads a vector of numbers (its length at most what the rest can hold).
    ///
    /// # Errors
    ///
    /// A truncated state.
    pub fn numbers(&mut self) -> Result<Vec<f64>, DetectorError> {
        let n = self.count(self.bytes.len() / 8)?;
        (0..n).map(|_| self.number()).collect()
    }

    /// Checks that nothing is left.
    ///
    /// # Errors
    ///
    /// Trailing bytes.
    pub fn end(&self) -> Result<(), DetectorError> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err(corrupt(format!("{} bytes after the end", self.bytes.len())))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_written_reads_back_and_damage_is_caught() {
        let mut w = Writer::default();
        w.count(3);
        w.numbers(&[1.5, -2.0]);
        w.number(f64::INFINITY);
        let mut r = Reader::new(&w.bytes);
        assert_eq!(r.count(10).unwrap(), 3);
        assert_eq!(r.numbers().unwrap(), vec![1.5, -2.0]);
        assert_eq!(r.number().unwrap(), f64::INFINITY);
        r.end().unwrap();
        let cut = &w.bytes[..w.bytes.len() - 3];
        let mut r = Reader::new(cut);
        r.count(10).unwrap();
        r.numbers().unwrap();
        assert!(r.number().unwrap_err().to_string().contains("ends early"));
        let mut r = Reader::new(&w.bytes);
        assert!(r.count(2).unwrap_err().to_string().contains("a count of 3"));
    }
}

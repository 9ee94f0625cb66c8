//! Events as a service pushes them: times, keys, and named value columns.

use super::EngineError;

/// Events to push: times, keys, and named value columns.
#[derive(Debug, Clone, Default)]
pub struct Events {
    names: Vec<String>,
    key_width: usize,
    timestamps: Vec<i64>,
    key_parts: Vec<String>,
    columns: Vec<Vec<f64>>,
}

impl Events {
    /// An empty batch with value columns `names` and keys of `key_width` parts (one per
    /// key column of the rules; 0 without keys).
    pub fn new(names: &[&str], key_width: usize) -> Self {
        Events {
            names: names.iter().map(|n| (*n).to_owned()).collect(),
            key_width,
            columns: vec![Vec::new(); names.len()],
            ..Events::default()
        }
    }

    /// Adds an event at `time` (ns since the epoch) of key `key` with `values` (one per
    /// column, NaN for missing).
    ///
    /// # Errors
    ///
    /// [`EngineError::EventShape`] for the wrong number of values or key parts.
    pub fn push(&mut self, time: i64, key: &[&str], values: &[f64]) -> Result<(), EngineError> {
        if values.len() != self.names.len() {
            return Err(EngineError::EventShape {
                what: "values",
                got: values.len(),
                want: self.names.len(),
            });
        }
        if key.len() != self.key_width {
            return Err(EngineError::EventShape {
                what: "key parts",
                got: key.len(),
                want: self.key_width,
            });
        }
        self.timestamps.push(time);
        self.key_parts.extend(key.iter().map(|k| (*k).to_owned()));
        for (column, &v) in self.columns.iter_mut().zip(values) {
            column.push(v);
        }
        Ok(())
    }

    /// Events in the batch.
    pub fn len(&self) -> usize {
        self.timestamps.len()
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.timestamps.is_empty()
    }

    /// Empties the batch, keeping its columns.
    pub fn clear(&mut self) {
        self.timestamps.clear();
        self.key_parts.clear();
        self.columns.iter_mut().for_each(Vec::clear);
    }

    /// The value columns' names.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The events' times, ns.
    pub fn timestamps(&self) -> &[i64] {
        &self.timestamps
    }

    /// Column `i`'s values.
    pub fn column(&self, i: usize) -> &[f64] {
        &self.columns[i]
    }

    /// Event `i`'s key parts.
    pub fn key(&self, i: usize) -> &[String] {
        &self.key_parts[i * self.key_width..(i + 1) * self.key_width]
    }
}

//! The life cycle every detector here shares: collect the first `train` events with finite
//! values of every input, fit a [`Model`] to them, then judge each later event.
//!
//! NaN and ±inf policy: an event with a non-finite value in any input is never judged
//! (undetermined) and never trained on; it does not count towards `train`.

/// The `Detector` methods every detector here hands to its [`Trained`] field `trained`.
macro_rules! delegate_to_trained {
    () => {
        // 2: the training buffer keeps the first training event's time (`train_for`).
        const STATE_VERSION: u32 = 2;

        fn score(
            &mut self,
            frame: &adr_sdk::Frame<'_>,
            out: &mut adr_sdk::ScoresMut<'_>,
        ) -> Result<(), adr_sdk::DetectorError> {
            self.trained.score(frame, out)
        }

        fn update(
            &mut self,
            event: &adr_sdk::Event<'_>,
        ) -> Result<adr_sdk::Score, adr_sdk::DetectorError> {
            self.trained.update(event)
        }

        fn save(&self) -> Option<Vec<u8>> {
            Some(self.trained.save())
        }

        fn state_bytes(&self) -> Option<u64> {
            Some(self.trained.state_bytes())
        }

        fn restore(&mut self, state: &[u8]) -> Result<(), adr_sdk::DetectorError> {
            self.trained.restore(state)
        }
    };
}
pub(crate) use delegate_to_trained;

/// The [`Training`] a detector's `train`, `train_for`, `contamination` and `standardise`
/// parameters ask for.
macro_rules! training_of {
    ($params:expr) => {
        $crate::trained::Training::of($params.train, $params.train_for, $params.contamination)
            .standardised($params.standardise)
    };
}
pub(crate) use training_of;

use adr_sdk::score::ratio;
use adr_sdk::{DetectorError, ErrorKind, Event, Frame, Score, ScoresMut};
use rayon::prelude::*;

use crate::state::{Reader, Writer};

/// A model fitted to training rows.
pub trait Model: Sized + Send + Sync + 'static {
    /// Settings the model is fitted with (the detector's parameters).
    type Settings: Send;

    /// Fits to `rows`, row-major with `d` values a row.
    ///
    /// # Errors
    ///
    /// Training data the method cannot use.
    fn fit(settings: &Self::Settings, rows: &[f64], d: usize) -> Result<Self, DetectorError>;

    /// The raw anomaly score of `row` (higher is more anomalous).
    fn score(&self, row: &[f64]) -> f64;

    /// The most bytes the model fitted to `rows` training rows of `d` values takes, with
    /// what its fit holds at once (a kernel cache, a covariance), not counting the rows
    /// themselves (see [`adr_sdk::Detector::state_bytes`]).
    fn model_bytes(settings: &Self::Settings, rows: usize, d: usize) -> u64;

    /// The raw scores of the rows of one batch, row-major (by default [`score`](Self::score)
    /// of each, spread over the rayon pool in fixed chunks, so the result does not depend
    /// on the thread count).
    fn score_batch(&self, rows: &[f64], d: usize) -> Vec<f64> {
        let mut out = vec![0.0; rows.len() / d];
        out.par_chunks_mut(BATCH_CHUNK)
            .zip(rows.par_chunks(BATCH_CHUNK * d))
            .for_each(|(out, rows)| {
                for (o, r) in out.iter_mut().zip(rows.chunks_exact(d)) {
                    *o = self.score(r);
                }
            });
        out
    }

    /// Whether [`score_batch`](Self::score_batch) must see every judged row of a frame at
    /// once (its scores depend on one another, or it orders them), rather than blocks of
    /// them scored in parallel.
    const WHOLE_BATCH: bool = false;

    /// The scores of the training rows themselves, which set the alarm threshold (by
    /// default [`score_batch`](Self::score_batch) of them, or of an evenly spaced sample of
    /// [`THRESHOLD_ROWS`] when there are more; a neighbour method leaves the row out of
    /// its own neighbours, as PyOD's `decision_scores_` do).
    fn training_scores(&self, rows: &[f64], d: usize) -> Vec<f64> {
        let n = rows.len() / d;
        if n <= THRESHOLD_ROWS {
            return self.score_batch(rows, d);
        }
        let sample: Vec<f64> = (0..THRESHOLD_ROWS)
            .flat_map(|i| {
                let r = i * n / THRESHOLD_ROWS;
                rows[r * d..(r + 1) * d].iter().copied()
            })
            .collect();
        self.score_batch(&sample, d)
    }

    /// The fewest training rows a fit takes (a span that ends with fewer goes on training).
    fn min_rows(_settings: &Self::Settings) -> usize {
        2
    }

    /// Writes the fitted model.
    fn save(&self, out: &mut Writer);

    /// Reads a model written by [`save`](Self::save).
    ///
    /// # Errors
    ///
    /// A corrupt state.
    fn restore(input: &mut Reader<'_>) -> Result<Self, DetectorError>;
}

/// Training rows whose scores set the threshold, at most: the quantile of an evenly spaced
/// sample of 65 536 estimates it within about 0.4 % of rank at the 99th percentile, while
/// scoring a million training rows would cost as much as the fit itself.
pub const THRESHOLD_ROWS: usize = 1 << 16;

/// Rows copied from a frame's columns at a time while training.
const TRANSPOSE_BLOCK: usize = 1024;

/// Rows judged by one rayon task, copied out of the frame's columns on its thread.
const JUDGE_BLOCK: usize = 8192;

/// Copies rows `start..` of `columns` into `rows` (row-major, as many as it holds).
fn transpose(columns: &[&[f64]], start: usize, rows: &mut [f64]) {
    let d = columns.len();
    let len = rows.len() / d;
    for (c, column) in columns.iter().enumerate() {
        for (slot, &x) in rows
            .iter_mut()
            .skip(c)
            .step_by(d)
            .zip(&column[start..start + len])
        {
            *slot = x;
        }
    }
}

/// Rows a rayon task scores in [`Model::score_batch`].
const BATCH_CHUNK: usize = 256;

/// Each input's training mean and population deviation (a zero deviation counts as 1), as
/// PyOD's `standardizer` and scikit-learn's `StandardScaler` compute them.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Scale {
    pub(crate) mean: Vec<f64>,
    pub(crate) std: Vec<f64>,
}

impl Scale {
    /// Each input's mean and population deviation over `rows` (a zero deviation counts as
    /// 1), as scikit-learn's `StandardScaler`. The deviations are summed in units of a
    /// power of two near the largest, so inputs near 1e300 or 1e-300 neither overflow nor
    /// lose their spread to underflow, with the same bits as the plain sums elsewhere.
    pub(crate) fn of(rows: &[f64], d: usize) -> Scale {
        let n = (rows.len() / d) as f64;
        let mut mean = vec![0.0; d];
        for row in rows.chunks_exact(d) {
            mean.iter_mut().zip(row).for_each(|(m, x)| *m += x);
        }
        mean.iter_mut().for_each(|m| *m /= n);
        for (c, m) in mean.iter_mut().enumerate() {
            if !m.is_finite() {
                // the sum overflowed: divide first
                *m = rows.chunks_exact(d).map(|row| row[c] / n).sum();
            }
        }
        let mut widest = vec![0.0f64; d];
        for row in rows.chunks_exact(d) {
            for ((w, x), m) in widest.iter_mut().zip(row).zip(&mean) {
                *w = w.max((x - m).abs());
            }
        }
        let unit: Vec<f64> = widest.iter().map(|&w| power_of_two_near(w)).collect();
        let mut var = vec![0.0; d];
        for row in rows.chunks_exact(d) {
            for (((v, x), m), u) in var.iter_mut().zip(row).zip(&mean).zip(&unit) {
                let dev = (x - m) / u;
                *v += dev * dev;
            }
        }
        let std = var
            .iter()
            .zip(&unit)
            .map(|(v, u)| (v / n).sqrt() * u)
            .map(|s| if s == 0.0 { 1.0 } else { s })
            .collect();
        Scale { mean, std }
    }

    /// Standardises rows in place.
    fn apply(&self, rows: &mut [f64]) {
        for row in rows.chunks_exact_mut(self.mean.len()) {
            for ((x, m), s) in row.iter_mut().zip(&self.mean).zip(&self.std) {
                *x = (*x - m) / s;
            }
        }
    }
}

/// 1 for ordinary magnitudes (so sums keep their bits), else the power of two at or below
/// `x`: dividing by it is exact.
fn power_of_two_near(x: f64) -> f64 {
    const PLAIN: std::ops::RangeInclusive<f64> = 1e-150..=1e150;
    if !(x.is_finite() && x > 0.0) || PLAIN.contains(&x) {
        return 1.0;
    }
    2f64.powi(x.log2().floor().clamp(-1022.0, 1023.0) as i32)
}

/// A fitted model and its training scores' landmarks.
#[derive(Debug)]
struct Fitted<M> {
    model: M,
    /// The inputs' standardisation, when the detector standardises.
    scale: Option<Scale>,
    /// The lowest training score: normalised 0.
    floor: f64,
    /// Just above the `1 − contamination` quantile of the training scores: normalised 0.5.
    threshold: f64,
}

/// When a detector stops training, and where its alarm threshold goes.
#[derive(Debug, Clone, Copy)]
pub struct Training {
    /// Training events, at most.
    pub train: usize,
    /// The span of event time (ns) from the first training event after which the model
    /// fits on what it has; 0 for none.
    pub span: i64,
    /// Share of training events expected to be outliers.
    pub contamination: f64,
    /// Standardise each input with the training rows' mean and deviation.
    pub standardise: bool,
}

impl Training {
    /// From a detector's `train`, `train_for` and `contamination` parameters.
    pub fn of(train: usize, train_for: std::time::Duration, contamination: f64) -> Self {
        Training {
            train,
            span: i64::try_from(train_for.as_nanos()).unwrap_or(i64::MAX),
            contamination,
            standardise: false,
        }
    }

    /// The same, standardising each input (the detector's `standardise` parameter).
    pub fn standardised(self, standardise: bool) -> Self {
        Training {
            standardise,
            ..self
        }
    }
}

/// A detector's training buffer and, once trained, its model.
#[derive(Debug)]
pub struct Trained<M: Model> {
    settings: M::Settings,
    train: usize,
    span: i64,
    contamination: f64,
    standardise: bool,
    /// The first training event's time, once there is one.
    started: Option<i64>,
    d: usize,
    buffer: Vec<f64>,
    fitted: Option<Fitted<M>>,
    row: Vec<f64>,
}

/// numpy's default `percentile` (linear interpolation between closest ranks).
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    let rank = q / 100.0 * (sorted.len() - 1) as f64;
    let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo as f64)
}

impl<M: Model> Trained<M> {
    /// A detector on `d` inputs that trains on its first events, as `training` says.
    pub fn new(settings: M::Settings, d: usize, training: Training) -> Self {
        let train = training.train;
        Trained {
            settings,
            train,
            span: training.span,
            contamination: training.contamination,
            standardise: training.standardise,
            started: None,
            d,
            buffer: Vec::with_capacity(train.min(1 << 12) * d),
            fitted: None,
            row: vec![0.0; d],
        }
    }

    /// The most bytes one key takes: the training rows (and their scores, sorted for the
    /// threshold) and the model fitted to them.
    pub fn state_bytes(&self) -> u64 {
        let rows = self.train;
        let buffer = (rows as u64)
            .saturating_mul(self.d as u64 + 1)
            .saturating_mul(8);
        buffer
            .saturating_add(M::model_bytes(&self.settings, rows, self.d))
            .saturating_add(512)
    }

    /// Whether the model is fitted.
    pub fn is_fitted(&self) -> bool {
        self.fitted.is_some()
    }

    fn judge_row(&mut self, t: i64) -> Result<Score, DetectorError> {
        if self.row.iter().any(|x| !x.is_finite()) {
            return Ok(Score::UNDETERMINED);
        }
        if self.fitted.is_none() && !self.span_over(t)? {
            let row = std::mem::take(&mut self.row);
            let learned = self.learn(&row, t);
            self.row = row;
            return learned.map(|_| Score::UNDETERMINED);
        }
        let f = self.fitted.as_ref().expect("fitted once the span is over");
        if let Some(scale) = &f.scale {
            scale.apply(&mut self.row);
        }
        let raw = f.model.score(&self.row);
        Ok(Score::new(raw, normalise(raw, f.floor, f.threshold)))
    }

    /// Whether a training span is set and a (finite) event at `t` ends it, in which case
    /// the model fits on what it has first (when it has enough rows).
    fn span_over(&mut self, t: i64) -> Result<bool, DetectorError> {
        let Some(started) = self.started.filter(|_| self.span > 0) else {
            return Ok(false);
        };
        if t < started.saturating_add(self.span)
            || self.buffer.len() < M::min_rows(&self.settings) * self.d
        {
            return Ok(false);
        }
        self.fit()?;
        Ok(true)
    }

    /// Adds a finite row at `t` to the training buffer, fitting once it is full; whether
    /// the model is fitted now.
    fn learn(&mut self, row: &[f64], t: i64) -> Result<bool, DetectorError> {
        self.started.get_or_insert(t);
        // The buffer grows with the training rows up to `train`: where memory runs out,
        // an error for this detector, not an abort of the engine.
        self.buffer.try_reserve(row.len()).map_err(|e| {
            DetectorError::new(
                ErrorKind::Failed,
                format!(
                    "cannot hold {} training rows of {} inputs: {e}",
                    self.buffer.len() / self.d + 1,
                    self.d
                ),
            )
        })?;
        self.buffer.extend_from_slice(row);
        if self.buffer.len() == self.train * self.d {
            self.fit()?;
            return Ok(true);
        }
        Ok(false)
    }

    fn fit(&mut self) -> Result<(), DetectorError> {
        let mut rows = std::mem::take(&mut self.buffer);
        let scale = self.standardise.then(|| Scale::of(&rows, self.d));
        if let Some(scale) = &scale {
            scale.apply(&mut rows);
        }
        let model = M::fit(&self.settings, &rows, self.d)?;
        let mut scores = model.training_scores(&rows, self.d);
        scores.sort_by(f64::total_cmp);
        // PyOD labels a point an outlier when its score is *above* the quantile: the
        // alarm threshold is the next number up, so a score equal to it stays normal.
        let quantile = percentile(&scores, 100.0 * (1.0 - self.contamination));
        self.fitted = Some(Fitted {
            floor: scores[0],
            threshold: quantile.next_up(),
            model,
            scale,
        });
        Ok(())
    }

    /// Judges every row of `frame` (its columns are the inputs, in order). The rows judged
    /// after the fit are scored together, through [`Model::score_batch`].
    ///
    /// # Errors
    ///
    /// A frame without `d` numeric columns, or a fit that fails.
    pub fn score(
        &mut self,
        frame: &Frame<'_>,
        out: &mut ScoresMut<'_>,
    ) -> Result<(), DetectorError> {
        let columns: Vec<&[f64]> = (0..self.d)
            .map(|c| frame.f64(c))
            .collect::<Result<_, _>>()?;
        let (n, d) = (frame.len(), self.d);
        let timestamps = frame.timestamps();
        let mut block = vec![0.0; TRANSPOSE_BLOCK.min(n) * d];
        let mut first = 0;
        'training: while first < n && self.fitted.is_none() {
            let len = TRANSPOSE_BLOCK.min(n - first);
            transpose(&columns, first, &mut block[..len * d]);
            for row in block[..len * d].chunks_exact(d) {
                let t = timestamps[first];
                if !row.iter().all(|x| x.is_finite()) {
                    out.set(first, Score::UNDETERMINED);
                } else if self.span_over(t)? {
                    // This event is the first judged.
                    break 'training;
                } else {
                    out.set(first, Score::UNDETERMINED);
                    if self.learn(row, t)? {
                        first += 1;
                        break 'training;
                    }
                }
                first += 1;
            }
        }
        let Some(f) = &self.fitted else {
            return Ok(());
        };
        let judge = |start: usize, len: usize| -> Vec<Score> {
            let mut rows = vec![0.0; len * d];
            transpose(&columns, start, &mut rows);
            let finite: Vec<bool> = rows
                .chunks_exact(d)
                .map(|r| r.iter().all(|x| x.is_finite()))
                .collect();
            if finite.contains(&false) {
                let mut kept = 0;
                for (r, &keep) in finite.iter().enumerate() {
                    if keep {
                        rows.copy_within(r * d..(r + 1) * d, kept * d);
                        kept += 1;
                    }
                }
                rows.truncate(kept * d);
            }
            if let Some(scale) = &f.scale {
                scale.apply(&mut rows);
            }
            let mut raws = f.model.score_batch(&rows, d).into_iter();
            finite
                .iter()
                .map(|&keep| match keep {
                    true => {
                        let raw = raws.next().expect("a score per finite row");
                        Score::new(raw, normalise(raw, f.floor, f.threshold))
                    }
                    false => Score::UNDETERMINED,
                })
                .collect()
        };
        let scores: Vec<Score> = if M::WHOLE_BATCH {
            judge(first, n - first)
        } else {
            // Blocks in parallel, each copied out of the columns on its own thread.
            let starts: Vec<usize> = (first..n).step_by(JUDGE_BLOCK).collect();
            starts
                .into_par_iter()
                .flat_map_iter(|start| judge(start, JUDGE_BLOCK.min(n - start)))
                .collect()
        };
        for (k, score) in scores.into_iter().enumerate() {
            out.set(first + k, score);
        }
        Ok(())
    }

    /// Judges one event.
    ///
    /// # Errors
    ///
    /// An event without `d` values, or a fit that fails.
    pub fn update(&mut self, event: &Event<'_>) -> Result<Score, DetectorError> {
        let values = event.values();
        if values.len() != self.d {
            return Err(DetectorError::new(
                ErrorKind::InvalidInput,
                format!(
                    "an event has {} values, the detector {} inputs",
                    values.len(),
                    self.d
                ),
            ));
        }
        self.row.copy_from_slice(values);
        self.judge_row(event.timestamp())
    }

    /// The training buffer or the fitted model, as bytes.
    pub fn save(&self) -> Vec<u8> {
        let mut out = Writer::default();
        out.count(self.d);
        match &self.fitted {
            None => {
                out.count(0);
                out.numbers(&self.buffer);
                // The first training event's time (bits of the i64), if any.
                out.count(usize::from(self.started.is_some()));
                out.count(self.started.unwrap_or(0) as u64 as usize);
            }
            Some(f) => {
                out.count(1);
                out.number(f.floor);
                out.number(f.threshold);
                out.count(usize::from(f.scale.is_some()));
                if let Some(scale) = &f.scale {
                    out.numbers(&scale.mean);
                    out.numbers(&scale.std);
                }
                f.model.save(&mut out);
            }
        }
        out.bytes
    }

    /// Restores what [`save`](Self::save) wrote, for the same inputs.
    ///
    /// # Errors
    ///
    /// A corrupt state or one for another number of inputs; the detector is unchanged.
    pub fn restore(&mut self, bytes: &[u8]) -> Result<(), DetectorError> {
        let mut input = Reader::new(bytes);
        let d = input.count(usize::MAX)?;
        if d != self.d {
            return Err(DetectorError::new(
                ErrorKind::IncompatibleState,
                format!(
                    "the state is of a detector on {d} inputs, this one has {}",
                    self.d
                ),
            ));
        }
        let (buffer, fitted, started) = match input.count(1)? {
            0 => {
                let buffer = input.numbers()?;
                let has_start = input.count(1)? == 1;
                let started = input.count(usize::MAX)? as u64 as i64;
                if buffer.len() % d != 0 || buffer.len() >= self.train * d {
                    return Err(DetectorError::new(
                        ErrorKind::IncompatibleState,
                        format!(
                            "a training buffer of {} values does not fit {d} inputs and {} rows",
                            buffer.len(),
                            self.train
                        ),
                    ));
                }
                (buffer, None, has_start.then_some(started))
            }
            _ => {
                let (floor, threshold) = (input.number()?, input.number()?);
                let scale = match input.count(1)? {
                    0 => None,
                    _ => Some(Scale {
                        mean: input.numbers()?,
                        std: input.numbers()?,
                    }),
                };
                if scale
                    .as_ref()
                    .is_some_and(|s| s.mean.len() != d || s.std.len() != d)
                {
                    return Err(DetectorError::new(
                        ErrorKind::IncompatibleState,
                        format!("model state is corrupt: a standardisation not of {d} inputs"),
                    ));
                }
                let model = M::restore(&mut input)?;
                (
                    Vec::new(),
                    Some(Fitted {
                        model,
                        scale,
                        floor,
                        threshold,
                    }),
                    None,
                )
            }
        };
        input.end()?;
        self.buffer = buffer;
        self.fitted = fitted;
        self.started = started;
        Ok(())
    }
}

/// `0` at the lowest training score, `0.5` at the threshold, towards `1` beyond.
fn normalise(raw: f64, floor: f64, threshold: f64) -> f64 {
    if raw.is_nan() || threshold.is_nan() {
        return f64::NAN;
    }
    let span = threshold - floor;
    let v = if span > 0.0 {
        ratio(raw - floor, span)
    } else if raw > threshold {
        1.0
    } else if raw == threshold {
        0.5
    } else {
        0.0
    };
    // The verdict is the comparison with the threshold, never the rounding of the ratio:
    // `raw − floor` and `threshold − floor` can round to one number (the threshold is the
    // quantile's next float), which would call a score equal to the quantile an anomaly
    // where PyOD (`score > threshold_`) does not.
    if raw >= threshold {
        v.max(0.5)
    } else {
        v.min(0.5f64.next_down())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_interpolates_like_numpy() {
        let xs = [1.0, 2.0, 3.0, 4.0];
        // numpy.percentile([1, 2, 3, 4], [0, 90, 50, 100]) = 1, 3.7, 2.5, 4
        for (q, want) in [(0.0, 1.0), (90.0, 3.7), (50.0, 2.5), (100.0, 4.0)] {
            assert!((percentile(&xs, q) - want).abs() < 1e-12, "q = {q}");
        }
    }

    /// The distance from the training mean, on one input.
    struct Mean(f64);

    impl Model for Mean {
        type Settings = ();
        fn fit(_: &(), rows: &[f64], _d: usize) -> Result<Self, DetectorError> {
            Ok(Mean(rows.iter().sum::<f64>() / rows.len() as f64))
        }
        fn score(&self, row: &[f64]) -> f64 {
            (row[0] - self.0).abs()
        }
        fn model_bytes(_: &(), _: usize, _: usize) -> u64 {
            8
        }
        fn save(&self, out: &mut Writer) {
            out.number(self.0);
        }
        fn restore(input: &mut Reader<'_>) -> Result<Self, DetectorError> {
            input.number().map(Mean)
        }
    }

    fn judge(trained: &mut Trained<Mean>, t: i64, x: f64) -> Score {
        trained.update(&Event::new(t, &[x])).unwrap()
    }

    #[test]
    fn a_training_span_ends_at_the_first_event_past_it() {
        let span = std::time::Duration::from_nanos(10);
        let mut trained = Trained::<Mean>::new((), 1, Training::of(1000, span, 0.1));
        // Events every 3 ns from t = 5: those before t = 15 train (5, 8, 11, 14).
        for (k, t) in (5..15).step_by(3).enumerate() {
            assert_eq!(
                judge(&mut trained, t, k as f64).verdict,
                adr_sdk::Verdict::Undetermined
            );
            if k == 1 {
                // A restart mid-span keeps the span's start.
                let state = trained.save();
                trained = Trained::new((), 1, Training::of(1000, span, 0.1));
                trained.restore(&state).unwrap();
            }
        }
        assert!(!trained.is_fitted());
        let s = judge(&mut trained, 17, 1.5);
        assert!(trained.is_fitted());
        assert_eq!(s.raw, 0.0, "the mean of 0, 1, 2, 3");
        // A frame does the same: the event that ends the span is judged.
        let mut framed = Trained::<Mean>::new((), 1, Training::of(1000, span, 0.1));
        let (ts, xs) = ([5, 8, 11, 14, 17, 20], [0.0, 1.0, 2.0, 3.0, 1.5, 9.5]);
        let cols = [adr_sdk::Column::f64("x", &xs)];
        let frame = Frame::new(&ts, &cols).unwrap();
        let mut out = adr_sdk::score::ScoreColumns::with_len(6);
        framed.score(&frame, &mut out.as_mut()).unwrap();
        assert_eq!(&out.raw[4..], &[0.0, 8.0]);
        assert!(out.raw[..4].iter().all(|r| r.is_nan()));
    }

    #[test]
    fn standardising_uses_the_training_mean_and_population_deviation() {
        let training = Training::of(3, std::time::Duration::ZERO, 0.1).standardised(true);
        let mut trained = Trained::<Mean>::new((), 1, training);
        for (t, x) in [0.0, 2.0, 4.0].into_iter().enumerate() {
            judge(&mut trained, t as i64, x);
        }
        // Mean 2, deviation √(8/3): 6 is 4 / 1.633 = 2.449 deviations from the mean.
        let want = 4.0 / (8.0f64 / 3.0).sqrt();
        assert!((judge(&mut trained, 3, 6.0).raw - want).abs() < 1e-12);
        let state = trained.save();
        let mut back = Trained::<Mean>::new((), 1, training);
        back.restore(&state).unwrap();
        assert_eq!(
            judge(&mut back, 4, 6.0).raw,
            judge(&mut trained, 4, 6.0).raw
        );
        // A batch is standardised the same way.
        let cols = [adr_sdk::Column::f64("x", &[6.0, 2.0])];
        let frame = Frame::new(&[5, 6], &cols).unwrap();
        let mut out = adr_sdk::score::ScoreColumns::with_len(2);
        trained.score(&frame, &mut out.as_mut()).unwrap();
        assert_eq!(out.raw, vec![judge(&mut trained, 7, 6.0).raw, 0.0]);
    }

    #[test]
    fn the_count_still_caps_a_span() {
        let span = std::time::Duration::from_secs(3600);
        let mut trained = Trained::<Mean>::new((), 1, Training::of(3, span, 0.1));
        for t in 0..3 {
            judge(&mut trained, t, t as f64);
        }
        assert_eq!(judge(&mut trained, 3, 1.0).raw, 0.0);
    }

    #[test]
    fn normalised_scores_meet_the_contract() {
        assert_eq!(normalise(1.0, 1.0, 3.0), 0.0);
        assert_eq!(normalise(3.0, 1.0, 3.0), 0.5);
        assert!(normalise(1e9, 1.0, 3.0) > 0.99);
        assert_eq!(normalise(2.0, 2.0, 2.0), 0.5);
        assert_eq!(normalise(2.5, 2.0, 2.0), 1.0);
    }

    #[test]
    fn a_score_at_the_quantile_is_normal_whatever_the_rounding() {
        // integer scores: the quantile 7 and its next float differ by less than the
        // rounding of their distance to a floor of -3e16
        let (floor, quantile) = (-3e16, 7.0f64);
        let threshold = quantile.next_up();
        assert!(normalise(quantile, floor, threshold) < 0.5);
        assert!(normalise(threshold, floor, threshold) >= 0.5);
        assert!(normalise(8.0, floor, threshold) >= 0.5);
        for floor in [-1e300, -1.0, 0.0, 6.0] {
            assert!(normalise(quantile, floor, threshold) < 0.5, "floor {floor}");
        }
    }
}

//! Evaluating feature expressions, row by row, with state kept per key.
//!
//! Semantics follow pandas, so analysts get the numbers they know (see
//! `docs/decisions/0007-features.md`):
//! - `pct_change(x)`, `log_return(x)`, `diff(x)`, `lag(x, n)` compare with the previous
//!   (n-th previous) row of the same key, NaN included, as `pct_change(fill_method=None)`,
//!   `shift(n)` do;
//! - `mean|std|min|max|sum(x, w)` are `rolling(w)` aggregates over the window ending at the
//!   row: a count window needs `w` non-NaN values (pandas' default `min_periods`), a
//!   duration window `(t − d, t]` needs one; `std` uses `ddof = 1`;
//! - `zscore(x, w)` compares x with the window of rows *before* it, like the detectors;
//! - `ewma(x, α)` is `ewm(alpha=α, adjust=False).mean()`: a NaN row keeps the average, and
//!   the next value weighs as if the NaN rows had passed (pandas' absolute positions);
//! - `vwap(p, v, w)` is Σ p·v / Σ v over the window, rows with a NaN left out;
//! - `abs`, `clip(x, lo, hi)` and arithmetic are element-wise, IEEE (x/0 is ±inf or NaN).

use std::collections::VecDeque;

use super::ast::{BinOp, Expr, ValueKind};

/// A window of rows: the last n rows, or the rows of the last span of event time (ns).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Lookback {
    /// The last n rows.
    Count(usize),
    /// Rows with time in (t − span, t].
    Time(i64),
}

/// A rolling aggregate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Agg {
    /// Mean.
    Mean,
    /// Sample standard deviation.
    Std,
    /// Minimum.
    Min,
    /// Maximum.
    Max,
    /// Sum.
    Sum,
}

/// A compiled feature expression over the row's value slots.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// A number.
    Const(f64),
    /// A field or an earlier feature of the row.
    Slot(usize),
    /// `-e`.
    Neg(Box<Node>),
    /// `a op b`.
    Bin(BinOp, Box<Node>, Box<Node>),
    /// `abs(e)`.
    Abs(Box<Node>),
    /// `clip(e, lo, hi)`.
    Clip(Box<Node>, f64, f64),
    /// A function with memory, its state at index `.0` of the key's state.
    Stateful(usize, Op, Vec<Node>),
}

impl Node {
    /// The most bytes one key's state of this expression takes: 24 bytes a row a window
    /// keeps (time, value, volume), up to the next power of two (a deque doubles as it
    /// grows); `None` when a window of event time makes it depend on the event rate.
    pub fn state_bytes(&self) -> Option<u64> {
        const FIXED: u64 = 64;
        match self {
            Node::Const(_) | Node::Slot(_) => Some(0),
            Node::Neg(e) | Node::Abs(e) | Node::Clip(e, _, _) => e.state_bytes(),
            Node::Bin(_, a, b) => Some(a.state_bytes()? + b.state_bytes()?),
            Node::Stateful(_, op, args) => {
                let own = match op {
                    Op::Lag(n) => (*n as u64 + 1).next_power_of_two() * 8 + FIXED,
                    Op::Rolling(_, span) | Op::ZScore(span) | Op::Vwap(span) => match span {
                        Lookback::Count(n) => (*n as u64 + 1).next_power_of_two() * 24 + FIXED,
                        Lookback::Time(_) => return None,
                    },
                    Op::PctChange | Op::LogReturn | Op::Diff | Op::Ewma(_) => FIXED,
                };
                args.iter()
                    .try_fold(own, |total, a| Some(total + a.state_bytes()?))
            }
        }
    }
}

/// A function with memory.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Op {
    /// x / previous − 1.
    PctChange,
    /// ln(x / previous).
    LogReturn,
    /// x − previous.
    Diff,
    /// The value n rows back.
    Lag(usize),
    /// A rolling aggregate.
    Rolling(Agg, Lookback),
    /// z of x against the window before it.
    ZScore(Lookback),
    /// Exponentially weighted mean.
    Ewma(f64),
    /// Volume-weighted average price.
    Vwap(Lookback),
}

/// Why an expression cannot be compiled (the checker reports these before; this is the
/// planner's guard).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot compile feature expression: {0}")]
pub struct CompileError(pub String);

/// Compiles `expr`; `slot` resolves a name to its value slot, `constant` to a number.
///
/// # Errors
///
/// A [`CompileError`] for a name, function or argument the checker would have refused.
pub fn compile(
    expr: &Expr,
    slot: &dyn Fn(&str) -> Option<usize>,
    constant: &dyn Fn(&str) -> Option<ValueKind>,
    states: &mut usize,
) -> Result<Node, CompileError> {
    let err = |m: String| CompileError(m);
    Ok(match expr {
        Expr::Value(v) => Node::Const(
            v.kind
                .as_number()
                .ok_or_else(|| err("a non-numeric literal".into()))?,
        ),
        Expr::Name(n) => match slot(&n.text) {
            Some(i) => Node::Slot(i),
            None => Node::Const(
                constant(&n.text)
                    .as_ref()
                    .and_then(ValueKind::as_number)
                    .ok_or_else(|| err(format!("unknown name `{}`", n.text)))?,
            ),
        },
        Expr::Neg(e, _) => Node::Neg(Box::new(compile(e, slot, constant, states)?)),
        Expr::Binary(op, a, b, _) => Node::Bin(
            *op,
            Box::new(compile(a, slot, constant, states)?),
            Box::new(compile(b, slot, constant, states)?),
        ),
        Expr::Call(func, args, _) => {
            let lit = |i: usize| -> Result<ValueKind, CompileError> {
                match args.get(i) {
                    Some(Expr::Value(v)) => Ok(v.kind.clone()),
                    Some(Expr::Name(n)) => {
                        constant(&n.text).ok_or_else(|| err(format!("`{}` is no constant", n.text)))
                    }
                    _ => Err(err(format!(
                        "argument {} of `{}` must be a literal",
                        i + 1,
                        func.text
                    ))),
                }
            };
            let lookback = |i: usize| -> Result<Lookback, CompileError> {
                match lit(i)? {
                    ValueKind::Int(n) if n >= 1 => Ok(Lookback::Count(n as usize)),
                    ValueKind::Duration(ns) if ns > 0 => Ok(Lookback::Time(ns)),
                    _ => Err(err(format!(
                        "argument {} of `{}` must be a window",
                        i + 1,
                        func.text
                    ))),
                }
            };
            let num = |i: usize| {
                lit(i)
                    .ok()
                    .as_ref()
                    .and_then(ValueKind::as_number)
                    .ok_or_else(|| {
                        err(format!(
                            "argument {} of `{}` must be a number",
                            i + 1,
                            func.text
                        ))
                    })
            };
            let mut series = |n: usize| -> Result<Vec<Node>, CompileError> {
                args.iter()
                    .take(n)
                    .map(|a| compile(a, slot, constant, states))
                    .collect()
            };
            let op = match func.text.as_str() {
                "abs" => return Ok(Node::Abs(Box::new(series(1)?.remove(0)))),
                "clip" => return Ok(Node::Clip(Box::new(series(1)?.remove(0)), num(1)?, num(2)?)),
                "pct_change" => Op::PctChange,
                "log_return" => Op::LogReturn,
                "diff" => Op::Diff,
                "lag" => match lit(1)? {
                    ValueKind::Int(n) if n >= 1 => Op::Lag(n as usize),
                    _ => return Err(err("the lag must be a count of at least 1".into())),
                },
                "mean" => Op::Rolling(Agg::Mean, lookback(1)?),
                "std" => Op::Rolling(Agg::Std, lookback(1)?),
                "min" => Op::Rolling(Agg::Min, lookback(1)?),
                "max" => Op::Rolling(Agg::Max, lookback(1)?),
                "sum" => Op::Rolling(Agg::Sum, lookback(1)?),
                "zscore" => Op::ZScore(lookback(1)?),
                "ewma" => Op::Ewma(num(1)?),
                "vwap" => Op::Vwap(lookback(2)?),
                other => return Err(err(format!("unknown function `{other}`"))),
            };
            let inputs = series(if matches!(op, Op::Vwap(_)) { 2 } else { 1 })?;
            let index = *states;
            *states += 1;
            Node::Stateful(index, op, inputs)
        }
    })
}

/// The memory of one stateful function for one key.
#[derive(Debug, Clone, Default)]
pub struct State {
    /// Recent `(time, value, second value)` rows, newest last.
    rows: VecDeque<(i64, f64, f64)>,
    /// Running sums over `rows`, so a window of any length costs O(1) per row.
    sums: Sums,
    /// The running value of an EWMA.
    average: Option<f64>,
    /// Rows since the EWMA last saw a value.
    gap: i32,
}

impl State {
    /// Appends the state, exactly (floats as their bits), as words: what a checkpoint
    /// keeps, read back by [`State::from_words`].
    pub fn to_words(&self, out: &mut Vec<u64>) {
        out.push(self.rows.len() as u64);
        for &(t, x, y) in &self.rows {
            out.extend([t as u64, x.to_bits(), y.to_bits()]);
        }
        let s = &self.sums;
        out.extend([
            s.n as u64,
            s.mean.to_bits(),
            s.m2.to_bits(),
            s.sum.to_bits(),
            s.pairs as u64,
            s.pv.to_bits(),
            s.v.to_bits(),
            u64::from(s.removals),
            u64::from(self.average.is_some()),
            self.average.unwrap_or(0.0).to_bits(),
            self.gap as u64,
        ]);
    }

    /// A state written by [`State::to_words`], and the words it took; `None` when the
    /// words are not one.
    pub fn from_words(words: &[u64]) -> Option<(State, usize)> {
        let rows = usize::try_from(*words.first()?).ok()?;
        let body = words.get(1..)?;
        let row_words = rows.checked_mul(3)?;
        let tail = body.get(row_words..row_words.checked_add(11)?)?;
        let rows = body[..row_words]
            .chunks_exact(3)
            .map(|r| (r[0] as i64, f64::from_bits(r[1]), f64::from_bits(r[2])))
            .collect();
        let state = State {
            rows,
            sums: Sums {
                n: usize::try_from(tail[0]).ok()?,
                mean: f64::from_bits(tail[1]),
                m2: f64::from_bits(tail[2]),
                sum: f64::from_bits(tail[3]),
                pairs: usize::try_from(tail[4]).ok()?,
                pv: f64::from_bits(tail[5]),
                v: f64::from_bits(tail[6]),
                removals: u32::try_from(tail[7]).ok()?,
            },
            average: (tail[8] != 0).then(|| f64::from_bits(tail[9])),
            gap: tail[10] as i32,
        };
        Some((state, 1 + row_words + 11))
    }
}

impl Node {
    /// Evaluates the node for the row at `ts` with `values`, updating `states`.
    pub fn eval(&self, ts: i64, values: &[f64], states: &mut [State]) -> f64 {
        match self {
            Node::Const(c) => *c,
            Node::Slot(i) => values[*i],
            Node::Neg(e) => -e.eval(ts, values, states),
            Node::Bin(op, a, b) => {
                let (a, b) = (a.eval(ts, values, states), b.eval(ts, values, states));
                match op {
                    BinOp::Add => a + b,
                    BinOp::Sub => a - b,
                    BinOp::Mul => a * b,
                    BinOp::Div => a / b,
                }
            }
            Node::Abs(e) => e.eval(ts, values, states).abs(),
            Node::Clip(e, lo, hi) => {
                let x = e.eval(ts, values, states);
                if x.is_nan() {
                    x
                } else {
                    x.max(*lo).min(*hi)
                }
            }
            Node::Stateful(index, op, inputs) => {
                let x = inputs[0].eval(ts, values, states);
                let y = inputs
                    .get(1)
                    .map_or(f64::NAN, |n| n.eval(ts, values, states));
                step(*op, &mut states[*index], ts, x, y)
            }
        }
    }
}

fn step(op: Op, s: &mut State, ts: i64, x: f64, y: f64) -> f64 {
    match op {
        Op::PctChange | Op::LogReturn | Op::Diff => {
            let prev = s.rows.back().map_or(f64::NAN, |r| r.1);
            s.rows.clear();
            s.rows.push_back((ts, x, f64::NAN));
            match op {
                Op::PctChange => x / prev - 1.0,
                Op::LogReturn => (x / prev).ln(),
                _ => x - prev,
            }
        }
        Op::Lag(n) => {
            s.rows.push_back((ts, x, f64::NAN));
            if s.rows.len() > n + 1 {
                s.rows.pop_front();
            }
            if s.rows.len() == n + 1 {
                s.rows[0].1
            } else {
                f64::NAN
            }
        }
        Op::Ewma(alpha) => {
            if x.is_nan() {
                s.gap += 1;
            } else {
                let keep = (1.0 - alpha).powi(s.gap + 1);
                s.average = Some(s.average.map_or(x, |a| keep * a + (1.0 - keep) * x));
                s.gap = 0;
            }
            s.average.unwrap_or(f64::NAN)
        }
        Op::Rolling(agg, span) => {
            push(s, span, ts, x, f64::NAN);
            aggregate(agg, span, s)
        }
        Op::ZScore(span) => {
            // The window before the row: expire by this row's time, judge, then add it.
            if let Lookback::Time(d) = span {
                expire(s, ts, d);
            }
            let mean = aggregate(Agg::Mean, span, s);
            let std = aggregate(Agg::Std, span, s);
            push(s, span, ts, x, f64::NAN);
            (x - mean) / std
        }
        Op::Vwap(span) => {
            push(s, span, ts, x, y);
            if enough(span, s.sums.pairs) {
                s.sums.pv / s.sums.v
            } else {
                f64::NAN
            }
        }
    }
}

/// Sums over a window's rows, updated as rows come and go, and rebuilt from the rows every
/// [`Sums::REBUILD_EVERY`] removals so rounding cannot drift.
#[derive(Debug, Clone, Copy, Default)]
struct Sums {
    /// Non-NaN values.
    n: usize,
    /// Their mean and sum of squared deviations (Welford), for `mean` and `std`.
    mean: f64,
    m2: f64,
    /// Their sum.
    sum: f64,
    /// Rows with a price and a volume, Σ p·v and Σ v, for `vwap`.
    pairs: usize,
    pv: f64,
    v: f64,
    removals: u32,
}

impl Sums {
    const REBUILD_EVERY: u32 = 1024;

    fn add(&mut self, x: f64, y: f64) {
        if !x.is_nan() {
            self.n += 1;
            self.sum += x;
            let delta = x - self.mean;
            self.mean += delta / self.n as f64;
            self.m2 += delta * (x - self.mean);
        }
        if !(x.is_nan() || y.is_nan()) {
            self.pairs += 1;
            self.pv += x * y;
            self.v += y;
        }
    }

    fn remove(&mut self, x: f64, y: f64) {
        if !x.is_nan() {
            self.n -= 1;
            self.sum -= x;
            if self.n == 0 {
                (self.mean, self.m2, self.sum) = (0.0, 0.0, 0.0);
            } else {
                let delta = x - self.mean;
                self.mean -= delta / self.n as f64;
                self.m2 -= delta * (x - self.mean);
            }
        }
        if !(x.is_nan() || y.is_nan()) {
            self.pairs -= 1;
            self.pv -= x * y;
            self.v -= y;
        }
        self.removals += 1;
    }

    fn rebuild(rows: &VecDeque<(i64, f64, f64)>) -> Sums {
        let mut sums = Sums::default();
        for &(_, x, y) in rows {
            sums.add(x, y);
        }
        sums
    }
}

fn pop(s: &mut State) {
    if let Some((_, x, y)) = s.rows.pop_front() {
        s.sums.remove(x, y);
    }
}

fn expire(s: &mut State, ts: i64, d: i64) {
    let oldest_kept = ts.saturating_sub(d);
    while s.rows.front().is_some_and(|r| r.0 <= oldest_kept) {
        pop(s);
    }
    if s.sums.removals >= Sums::REBUILD_EVERY {
        s.sums = Sums::rebuild(&s.rows);
    }
}

fn push(s: &mut State, span: Lookback, ts: i64, x: f64, y: f64) {
    s.rows.push_back((ts, x, y));
    s.sums.add(x, y);
    match span {
        Lookback::Count(n) => {
            if s.rows.len() > n {
                pop(s);
            }
            if s.sums.removals >= Sums::REBUILD_EVERY {
                s.sums = Sums::rebuild(&s.rows);
            }
        }
        Lookback::Time(d) => expire(s, ts, d),
    }
}

/// pandas' default `min_periods`: the full count for a count window, 1 for a time window.
fn enough(span: Lookback, n: usize) -> bool {
    match span {
        Lookback::Count(w) => n >= w,
        Lookback::Time(_) => n >= 1,
    }
}

fn aggregate(agg: Agg, span: Lookback, s: &State) -> f64 {
    let n = s.sums.n;
    if !enough(span, n) || n == 0 {
        return f64::NAN;
    }
    let values = || s.rows.iter().map(|r| r.1).filter(|x| !x.is_nan());
    match agg {
        Agg::Sum => s.sums.sum,
        Agg::Mean => s.sums.sum / n as f64,
        // Min and max scan the window: O(window) per row, cheap for the windows features
        // use; a monotonic deque would make them O(1) if that ever matters.
        Agg::Min => values().fold(f64::INFINITY, f64::min),
        Agg::Max => values().fold(f64::NEG_INFINITY, f64::max),
        Agg::Std => {
            if n < 2 {
                return f64::NAN;
            }
            (s.sums.m2.max(0.0) / (n as f64 - 1.0)).sqrt()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ast::Item, parse::parse_items};

    /// Evaluates `feature f = <expr>` over rows of (time s, x, y) with slots x = 0, y = 1.
    fn run(expr: &str, rows: &[(i64, f64, f64)]) -> Vec<f64> {
        let items = parse_items(0, &format!("feature f = {expr}\n")).unwrap();
        let Item::Feature(_, e) = &items[0] else {
            panic!()
        };
        let mut n = 0;
        let slot = |name: &str| match name {
            "x" => Some(0),
            "y" => Some(1),
            _ => None,
        };
        let node = compile(e, &slot, &|_| None, &mut n).unwrap();
        let mut states = vec![State::default(); n];
        rows.iter()
            .map(|&(t, x, y)| node.eval(t * 1_000_000_000, &[x, y], &mut states))
            .collect()
    }

    #[test]
    fn a_state_saved_as_words_goes_on_exactly_as_the_original() {
        let items = parse_items(
            0,
            "feature f = zscore(x, 5) + ewma(y, 0.3) + vwap(x, y, 4)\n",
        )
        .unwrap();
        let Item::Feature(_, e) = &items[0] else {
            panic!()
        };
        let slot = |name: &str| match name {
            "x" => Some(0),
            "y" => Some(1),
            _ => None,
        };
        let mut n = 0;
        let node = compile(e, &slot, &|_| None, &mut n).unwrap();
        let mut states = vec![State::default(); n];
        let xs = [1.0, 2.5, f64::NAN, 4.0, 3.0, 1e300, -2.0, 0.5];
        for (i, &x) in xs.iter().enumerate() {
            node.eval(i as i64, &[x, 1.0 + i as f64], &mut states);
        }
        let mut words = Vec::new();
        for s in &states {
            s.to_words(&mut words);
        }
        let mut restored = Vec::new();
        let mut at = 0;
        while at < words.len() {
            let (s, used) = State::from_words(&words[at..]).unwrap();
            restored.push(s);
            at += used;
        }
        assert_eq!(restored.len(), states.len());
        for i in 0..20 {
            let x = (i as f64).sin();
            let a = node.eval(100 + i, &[x, 2.0], &mut states);
            let b = node.eval(100 + i, &[x, 2.0], &mut restored);
            assert_eq!(a.to_bits(), b.to_bits(), "row {i}");
        }
        assert!(State::from_words(&[u64::MAX]).is_none());
        assert!(State::from_words(&[2, 1, 2]).is_none());
        assert!(State::from_words(&[]).is_none());
        assert!(State::from_words(&[u64::MAX / 3, 0]).is_none());
    }

    fn series(xs: &[f64]) -> Vec<(i64, f64, f64)> {
        xs.iter()
            .enumerate()
            .map(|(i, &x)| (i as i64 * 60, x, 1.0))
            .collect()
    }

    fn same(got: &[f64], want: &[f64]) -> bool {
        got.len() == want.len()
            && got
                .iter()
                .zip(want)
                .all(|(a, b)| (a.is_nan() && b.is_nan()) || (a - b).abs() < 1e-12)
    }

    #[test]
    fn functions_match_pandas() {
        let nan = f64::NAN;
        let xs = [1.0, 2.0, 4.0, nan, 8.0, 4.0];
        // pandas 3.1.1 on pd.Series(xs), printed by hand from a Python session
        let cases: [(&str, Vec<f64>); 9] = [
            ("pct_change(x)", vec![nan, 1.0, 1.0, nan, nan, -0.5]), // .pct_change(fill_method=None)
            ("diff(x)", vec![nan, 1.0, 2.0, nan, nan, -4.0]),
            (
                "log_return(x)",
                vec![nan, 2f64.ln(), 2f64.ln(), nan, nan, 0.5f64.ln()],
            ),
            ("lag(x, 2)", vec![nan, nan, 1.0, 2.0, 4.0, nan]), // .shift(2)
            ("mean(x, 2)", vec![nan, 1.5, 3.0, nan, nan, 6.0]), // .rolling(2).mean()
            ("sum(x, 3)", vec![nan, nan, 7.0, nan, nan, nan]),
            ("max(x, 2)", vec![nan, 2.0, 4.0, nan, nan, 8.0]),
            (
                "std(x, 2)",
                vec![nan, 0.5f64.sqrt(), 2f64.sqrt(), nan, nan, 8f64.sqrt()],
            ),
            ("ewma(x, 0.5)", vec![1.0, 1.5, 2.75, 2.75, 6.6875, 5.34375]), // .ewm(alpha=.5, adjust=False).mean()
        ];
        for (expr, want) in cases {
            let got = run(expr, &series(&xs));
            assert!(same(&got, &want), "{expr}: got {got:?}, want {want:?}");
        }
    }

    #[test]
    fn time_windows_take_the_last_span_including_the_row() {
        // rows every 60 s; a 2m window holds (t - 120 s, t]: this row and the one before
        let got = run("mean(x, 2m)", &series(&[1.0, 2.0, 4.0, 8.0]));
        assert!(same(&got, &[1.0, 1.5, 3.0, 6.0]), "{got:?}");
    }

    #[test]
    fn zscore_compares_with_the_rows_before() {
        let got = run("zscore(x, 3)", &series(&[1.0, 2.0, 3.0, 5.0]));
        // window [1, 2, 3]: mean 2, sample sd 1
        assert!(same(&got, &[f64::NAN, f64::NAN, f64::NAN, 3.0]), "{got:?}");
    }

    #[test]
    fn vwap_weights_prices_by_volume() {
        let rows = [
            (0, 10.0, 1.0),
            (60, 20.0, 3.0),
            (120, f64::NAN, 5.0),
            (180, 30.0, 1.0),
        ];
        let got = run("vwap(x, y, 3)", &rows);
        assert!(
            same(&got, &[f64::NAN, f64::NAN, f64::NAN, f64::NAN]),
            "count 3 needs 3 clean rows: {got:?}"
        );
        let got = run("vwap(x, y, 5m)", &rows);
        assert!(same(&got, &[10.0, 17.5, 17.5, 20.0]), "{got:?}");
    }

    #[test]
    fn running_sums_agree_with_recomputing_each_window() {
        // Large level, small spread: the case where running sums drift if anything does.
        let mut seed = 7u64;
        let xs: Vec<f64> = (0..20_000)
            .map(|_| {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let u = (seed >> 11) as f64 / (1u64 << 53) as f64;
                if u < 0.01 {
                    f64::NAN
                } else {
                    30_000.0 + u
                }
            })
            .collect();
        let w = 50;
        let mean = run("mean(x, 50)", &series(&xs));
        let std = run("std(x, 50)", &series(&xs));
        for i in w..xs.len() {
            let window: Vec<f64> = xs[i + 1 - w..=i]
                .iter()
                .copied()
                .filter(|x| !x.is_nan())
                .collect();
            if window.len() < w {
                assert!(mean[i].is_nan());
                continue;
            }
            let m = window.iter().sum::<f64>() / w as f64;
            let sd =
                (window.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (w as f64 - 1.0)).sqrt();
            assert!(
                (mean[i] - m).abs() < 1e-9,
                "mean at {i}: {} vs {m}",
                mean[i]
            );
            assert!(
                (std[i] - sd).abs() < 1e-7 * sd.max(1e-3),
                "std at {i}: {} vs {sd}",
                std[i]
            );
        }
    }

    #[test]
    fn arithmetic_and_elementwise_functions() {
        let got = run("clip(abs(x - 3) * 2, 0, 3) / y", &series(&[1.0, 3.0, 10.0]));
        assert!(same(&got, &[3.0, 0.0, 3.0]), "{got:?}");
    }
}

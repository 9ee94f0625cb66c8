//! Helpers for the detectors' unit tests: run a detector one event at a time and in
//! uneven chunks (checking both agree), and seeded noise.

use adr_sdk::{params::DetectorParams, Column, Detector, Event, Frame, ParamValue, Score};
use rand::{Rng, SeedableRng};

pub(crate) fn params<P: DetectorParams>(list: &[(&str, ParamValue)]) -> P {
    let pairs: Vec<_> = list
        .iter()
        .map(|(n, v)| ((*n).to_owned(), v.clone()))
        .collect();
    P::from_pairs(&pairs).unwrap_or_else(|e| panic!("test params rejected: {e:?}"))
}

/// Standard normal noise from a seed (Box-Muller).
pub(crate) fn noise(n: usize, seed: u64) -> Vec<f64> {
    let mut rng = rand_pcg::Pcg64::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let (u, v): (f64, f64) = (rng.gen::<f64>().max(1e-300), rng.gen());
            (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
        })
        .collect()
}

/// Scores rows (each `width` wide, row-major, one per second) one event at a time, and
/// again in chunks of 7; asserts both agree and returns the scores.
pub(crate) fn run_rows<D: Detector>(p: D::Params, width: usize, rows: &[f64]) -> Vec<Score> {
    let inputs: Vec<String> = (0..width).map(|i| format!("x{i}")).collect();
    let n = rows.len() / width;
    let mut d = D::new(p.clone(), &inputs).expect("detector builds");
    let stream: Vec<Score> = rows
        .chunks(width)
        .enumerate()
        .map(|(i, row)| {
            d.update(&Event::new(i as i64 * 1_000_000_000, row))
                .expect("update")
        })
        .collect();
    let mut d = D::new(p, &inputs).expect("detector builds");
    let mut chunked = Vec::with_capacity(n);
    for start in (0..n).step_by(7) {
        let end = (start + 7).min(n);
        let ts: Vec<i64> = (start..end).map(|i| i as i64 * 1_000_000_000).collect();
        let columns: Vec<Vec<f64>> = (0..width)
            .map(|j| (start..end).map(|i| rows[i * width + j]).collect())
            .collect();
        let cols: Vec<Column<'_>> = columns
            .iter()
            .zip(&inputs)
            .map(|(c, name)| Column::f64(name, c))
            .collect();
        let frame = Frame::new(&ts, &cols).expect("frame");
        let mut scores = adr_sdk::score::ScoreColumns::with_len(end - start);
        d.score(&frame, &mut scores.as_mut()).expect("score");
        chunked.extend((0..end - start).map(|i| scores.get(i)));
    }
    assert_eq!(
        format!("{stream:?}"),
        format!("{chunked:?}"),
        "events and chunks disagree"
    );
    stream
}

/// [`run_rows`] for one input.
pub(crate) fn run_stream<D: Detector>(p: D::Params, values: &[f64]) -> Vec<Score> {
    run_rows::<D>(p, 1, values)
}

/// Scores the first `cut` values, saves the state, restores it into a fresh detector and
/// scores the rest; returns all scores.
pub(crate) fn run_with_restore<D: Detector>(
    p: D::Params,
    values: &[f64],
    cut: usize,
) -> Vec<Score> {
    let inputs = ["x".to_owned()];
    let mut d = D::new(p.clone(), &inputs).expect("detector builds");
    let mut out: Vec<Score> = values[..cut]
        .iter()
        .enumerate()
        .map(|(i, x)| {
            d.update(&Event::new(i as i64, std::slice::from_ref(x)))
                .unwrap()
        })
        .collect();
    let state = d.save().expect("a state");
    let mut e = D::new(p, &inputs).expect("detector builds");
    e.restore(&state).expect("restores");
    out.extend(values[cut..].iter().enumerate().map(|(i, x)| {
        e.update(&Event::new((cut + i) as i64, std::slice::from_ref(x)))
            .unwrap()
    }));
    out
}

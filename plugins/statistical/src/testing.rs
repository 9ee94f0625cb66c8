//! Helpers for the detectors' unit tests: run a detector over values as one batch, as a
//! stream of events, and in uneven chunks, checking that the last two agree.

use adr_sdk::{params::DetectorParams, Column, Detector, Event, Frame, ParamValue, Score};

pub(crate) fn params<P: DetectorParams>(list: &[(&str, ParamValue)]) -> P {
    let pairs: Vec<_> = list
        .iter()
        .map(|(n, v)| ((*n).to_owned(), v.clone()))
        .collect();
    P::from_pairs(&pairs).unwrap_or_else(|e| panic!("test params rejected: {e:?}"))
}

fn timestamps(n: usize) -> Vec<i64> {
    (0..n as i64).map(|i| i * 1_000_000_000).collect()
}

/// Scores `values` (one per second) in one batch call.
pub(crate) fn run_batch<D: Detector>(p: D::Params, values: &[f64]) -> Vec<Score> {
    let mut d = D::new(p, &["x".into()]).expect("detector builds");
    score_chunk(&mut d, 0, values)
}

fn score_chunk<D: Detector>(d: &mut D, start: usize, values: &[f64]) -> Vec<Score> {
    let ts: Vec<i64> = timestamps(start + values.len())[start..].to_vec();
    let cols = [Column::f64("x", values)];
    let frame = Frame::new(&ts, &cols).expect("frame");
    let mut scores = adr_sdk::score::ScoreColumns::with_len(values.len());
    d.score(&frame, &mut scores.as_mut()).expect("score");
    (0..values.len()).map(|i| scores.get(i)).collect()
}

/// Scores `values` one event at a time, and again in chunks of 7; asserts both agree.
pub(crate) fn run_stream<D: Detector>(p: D::Params, values: &[f64]) -> Vec<Score> {
    let mut d = D::new(p.clone(), &["x".into()]).expect("detector builds");
    let ts = timestamps(values.len());
    let stream: Vec<Score> = values
        .iter()
        .zip(&ts)
        .map(|(x, &t)| {
            d.update(&Event::new(t, std::slice::from_ref(x)))
                .expect("update")
        })
        .collect();
    let mut d = D::new(p, &["x".into()]).expect("detector builds");
    let chunked: Vec<Score> = values
        .chunks(7)
        .enumerate()
        .flat_map(|(i, c)| score_chunk(&mut d, i * 7, c))
        .collect();
    assert_eq!(
        format!("{stream:?}"),
        format!("{chunked:?}"),
        "events and chunks disagree"
    );
    stream
}

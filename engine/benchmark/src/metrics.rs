//! Point metrics of scores against binary labels, as scikit-learn computes them.

/// Indices of `scores` from the highest score down (ties in index order).
fn descending(scores: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    order
}

/// Area under the ROC curve, tied scores counting half (scikit-learn's `roc_auc_score`);
/// `None` when the labels are all of one class.
pub fn roc_auc(scores: &[f64], labels: &[bool]) -> Option<f64> {
    let order = descending(scores);
    let positives = labels.iter().filter(|&&l| l).count() as f64;
    let negatives = labels.len() as f64 - positives;
    if positives == 0.0 || negatives == 0.0 {
        return None;
    }
    // For each group of tied scores, from the top: the negatives below it, and half of
    // those tied with it, per positive in it.
    let (mut area, mut negatives_above) = (0.0, 0.0);
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j < order.len() && scores[order[j]] == scores[order[i]] {
            j += 1;
        }
        let p = order[i..j].iter().filter(|&&k| labels[k]).count() as f64;
        let n = (j - i) as f64 - p;
        area += p * (negatives - negatives_above - n / 2.0);
        negatives_above += n;
        i = j;
    }
    Some(area / (positives * negatives))
}

/// Average precision, `Σ (Rₖ − Rₖ₋₁)·Pₖ` over the distinct scores from the top
/// (scikit-learn's `average_precision_score`); `None` without a positive label.
pub fn average_precision(scores: &[f64], labels: &[bool]) -> Option<f64> {
    let order = descending(scores);
    let positives = labels.iter().filter(|&&l| l).count() as f64;
    if positives == 0.0 {
        return None;
    }
    let (mut ap, mut tp, mut seen, mut recall) = (0.0, 0.0, 0.0, 0.0);
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j < order.len() && scores[order[j]] == scores[order[i]] {
            tp += f64::from(u8::from(labels[order[j]]));
            j += 1;
        }
        seen += (j - i) as f64;
        let now = tp / positives;
        ap += (now - recall) * (tp / seen);
        recall = now;
        i = j;
    }
    Some(ap)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_are_scikit_learns() {
        // roc_auc_score / average_precision_score([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
        let (s, l) = ([0.1, 0.4, 0.35, 0.8], [false, false, true, true]);
        assert_eq!(roc_auc(&s, &l), Some(0.75));
        assert!((average_precision(&s, &l).unwrap() - 0.833_333_333_333_333_4).abs() < 1e-12);
        // Ties: ([0, 1, 1, 0, 1], [0.5, 0.5, 0.2, 0.2, 0.9]) → 0.6667, 0.7556
        let (s, l) = ([0.5, 0.5, 0.2, 0.2, 0.9], [false, true, true, false, true]);
        assert!((roc_auc(&s, &l).unwrap() - 0.666_666_666_666_666_6).abs() < 1e-12);
        assert!((average_precision(&s, &l).unwrap() - 0.755_555_555_555_555_5).abs() < 1e-12);
        assert_eq!(roc_auc(&[1.0, 1.0], &[false, true]), Some(0.5));
        assert_eq!(roc_auc(&[1.0, 2.0], &[true, true]), None);
        assert_eq!(average_precision(&[1.0], &[false]), None);
    }
}

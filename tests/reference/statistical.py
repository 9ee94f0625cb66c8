#!/usr/bin/env python3
"""Reference scores for adr's statistical detectors, written independently with numpy
and scipy from the textbook formulas (not from adr's code), so that a test can compare
adr's plugin with them on real data.

    python statistical.py SERIES.csv [SERIES.csv ...] > reference.json

Each CSV has a header and a `value` column (the NAB layout). For each file and each case
below the output holds the raw score of every row (null where the detector cannot judge
the row: warm-up) and, where it has one, the verdict. Versions: requirements.txt.
"""
import csv
import json
import math
import sys

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy import stats

ROBUST = 1.482602218505602  # 1 / Phi^-1(3/4)
TABLE_N = list(range(3, 31))
# Rorabacher (1991) Table 1, r10, alpha = 0.05 (95 %)
DIXON_95 = [0.970, 0.829, 0.710, 0.625, 0.568, 0.526, 0.493, 0.466, 0.444, 0.426, 0.410,
            0.396, 0.384, 0.374, 0.365, 0.356, 0.349, 0.342, 0.337, 0.331, 0.326, 0.321,
            0.317, 0.312, 0.308, 0.305, 0.301, 0.298]


def before(x, w):
    """Windows of the w points before each point t >= w: row t - w."""
    return sliding_window_view(x, w)[:-1]


def ratio(num, den):
    """num / den, where a zero spread gives 0 for a zero deviation and inf otherwise
    (the rule adr documents)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.where(num == 0, 0.0, np.inf))


def zscore_rolling(x, w):
    win = before(x, w)
    z = ratio(np.abs(x[w:] - win.mean(axis=1)), win.std(axis=1, ddof=1))
    return [None] * w + list(z)


def zscore_robust_rolling(x, w):
    win = before(x, w)
    med = np.median(win, axis=1)
    mad = np.median(np.abs(win - med[:, None]), axis=1)
    return [None] * w + list(ratio(np.abs(x[w:] - med), ROBUST * mad))


def zscore_batch(x):
    return list(ratio(np.abs(x - x.mean()), np.full(len(x), x.std(ddof=1))))


def mad_rolling(x, w):
    win = before(x, w)
    med = np.median(win, axis=1)
    mad = np.median(np.abs(win - med[:, None]), axis=1)
    return [None] * w + list(0.6745 * ratio(np.abs(x[w:] - med), mad))


def iqr_rolling(x, w):
    win = before(x, w)
    q1, q3 = np.percentile(win, [25, 75], axis=1)  # linear interpolation
    outside = np.maximum(np.maximum(q1 - x[w:], x[w:] - q3), 0.0)
    return [None] * w + list(ratio(outside, q3 - q1))


def extreme(v, mean):
    """The point farthest from the mean; between the two ends the upper one wins a tie, and
    among equal values the upper end takes the last and the lower end the first (as adr)."""
    hi, lo = v.max(), v.min()
    if hi - mean >= mean - lo:
        return int(np.flatnonzero(v == hi)[-1])
    return int(np.flatnonzero(v == lo)[0])


def grubbs_critical(n, alpha):
    t = stats.t.isf(alpha / (2 * n), n - 2)
    return (n - 1) / math.sqrt(n) * math.sqrt(t * t / (n - 2 + t * t))


def grubbs_sample(sample, alpha):
    """Iterated two-sided Grubbs test: (raw, flagged) for every point of the sample."""
    idx = list(range(len(sample)))
    raw = [None] * len(sample)
    flagged = [False] * len(sample)
    while len(idx) >= 3:
        v = sample[idx]
        mean, sd = v.mean(), v.std(ddof=1)
        if sd == 0:
            break
        k = extreme(v, mean)
        g = abs(v[k] - mean) / sd
        if g < grubbs_critical(len(idx), alpha):
            break
        raw[idx[k]] = g
        flagged[idx[k]] = True
        del idx[k]
    v = sample[idx]
    mean, sd = v.mean(), (v.std(ddof=1) if len(idx) >= 2 else 0.0)
    for i in idx:
        raw[i] = abs(sample[i] - mean) / sd if sd > 0 else 0.0
    return raw, flagged


def esd_sample(sample, r, alpha):
    """Rosner's generalised ESD: (raw, flagged) for every point."""
    n = len(sample)
    idx = list(range(n))
    steps = []
    for i in range(1, min(r, n - 2) + 1):
        v = sample[idx]
        mean, sd = v.mean(), v.std(ddof=1)
        if sd == 0:
            break
        k = extreme(v, mean)
        t = stats.t.isf(alpha / (2 * (n - i + 1)), n - i - 1)
        lam = (n - i) * t / math.sqrt((n - i - 1 + t * t) * (n - i + 1))
        steps.append((idx[k], abs(v[k] - mean) / sd, lam))
        del idx[k]
    outliers = max([i + 1 for i, (_, rr, lam) in enumerate(steps) if rr >= lam], default=0)
    raw = [None] * n
    flagged = [False] * n
    for j, rr, _ in steps[:outliers]:
        raw[j], flagged[j] = rr, True
    rest = [i for i in range(n) if not flagged[i]]
    v = sample[rest]
    mean, sd = v.mean(), v.std(ddof=1)
    for i in rest:
        raw[i] = abs(sample[i] - mean) / sd if sd > 0 else 0.0
    return raw, flagged


def windowed(x, w, test):
    """A test on the window of the last w points, reported for the newest point."""
    raw, verdict = [None] * (w - 1), [None] * (w - 1)
    for t in range(w - 1, len(x)):
        r, f = test(x[t - w + 1:t + 1])
        raw.append(r[-1])
        verdict.append(f[-1])
    return raw, verdict


def dixon_sample(sample):
    s = np.sort(sample)
    n = len(s)
    rng = s[-1] - s[0]
    crit = DIXON_95[n - 3]
    raw = []
    for x in sample:
        if rng == 0:
            q = 0.0
        elif x == s[-1]:
            q = (s[-1] - s[-2]) / rng
        elif x == s[0]:
            q = (s[1] - s[0]) / rng
        else:
            q = 0.0
        raw.append(q)
    return raw, [q >= crit for q in raw]


def read_values(path):
    with open(path, newline="") as f:
        return np.array([float(row["value"]) for row in csv.DictReader(f)])


def cases(x):
    short = x[:3000]
    def alarm(raw, threshold):
        return {"raw": raw, "verdict": [None if r is None else r >= threshold for r in raw]}

    iqr = iqr_rolling(x, 500)
    out = {
        "zscore window=500": alarm(zscore_rolling(x, 500), 3.0),
        "zscore window=500 robust=true": alarm(zscore_robust_rolling(x, 500), 3.0),
        "zscore window=batch": alarm(zscore_batch(x), 3.0),
        "mad window=500": alarm(mad_rolling(x, 500), 3.5),
        "iqr window=500": alarm(iqr, 1.5),
        "tukey window=500 fence=outer": alarm(iqr, 3.0),
    }
    raw, flagged = grubbs_sample(x, 0.05)
    out["grubbs window=batch"] = {"raw": raw, "verdict": flagged}
    raw, flagged = windowed(short, 100, lambda s: grubbs_sample(s, 0.05))
    out["grubbs window=100 (first 3000 rows)"] = {"raw": raw, "verdict": flagged}
    raw, flagged = esd_sample(x, 10, 0.05)
    out["esd window=batch max_outliers=10"] = {"raw": raw, "verdict": flagged}
    raw, flagged = windowed(short, 100, lambda s: esd_sample(s, 10, 0.05))
    out["esd window=100 max_outliers=10 (first 3000 rows)"] = {"raw": raw, "verdict": flagged}
    raw, flagged = windowed(short, 10, dixon_sample)
    out["dixon_q window=10 (first 3000 rows)"] = {"raw": raw, "verdict": flagged}
    return out


def clean(values):
    """JSON-safe: None for undetermined, "inf" for an infinite score, bools for verdicts."""
    out = []
    for v in values:
        if v is None:
            out.append(None)
        elif isinstance(v, (bool, np.bool_)):
            out.append(bool(v))
        elif math.isinf(v):
            out.append("inf")
        else:
            out.append(float(v))
    return out


def main(paths):
    result = {"versions": {"numpy": np.__version__, "scipy": __import__("scipy").__version__}, "series": {}}
    for path in paths:
        x = read_values(path)
        result["series"][path] = {k: {f: clean(v) for f, v in c.items()} for k, c in cases(x).items()}
        print(f"reference: {path}", file=sys.stderr)
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1:])

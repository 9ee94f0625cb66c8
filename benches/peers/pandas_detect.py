#!/usr/bin/env python3
"""The job of `adr detect statistical.zscore --param window=W` done with pandas, as a
data scientist would: read_csv -> rolling z-score of each point against the W points
before it -> to_csv with score columns. Prints the wall time in seconds as JSON.

    python pandas_detect.py INPUT.csv OUTPUT.csv [--column value] [--window 500]
"""
import argparse
import json
import time

import numpy as np
import pandas as pd


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("input")
    ap.add_argument("output")
    ap.add_argument("--column", default="value")
    ap.add_argument("--window", type=int, default=500)
    ap.add_argument("--threshold", type=float, default=3.0)
    args = ap.parse_args()
    started = time.perf_counter()
    df = pd.read_csv(args.input)
    x = df[args.column]
    past = x.shift(1).rolling(args.window)  # the W points before each point
    z = (x - past.mean()) / past.std()
    score = z.abs()
    df["score"] = score
    df["normalised"] = score / (score + args.threshold)
    df["verdict"] = np.where(score.isna(), "undetermined", np.where(score >= args.threshold, "anomaly", "normal"))
    df.to_csv(args.output, index=False)
    print(json.dumps({"case": "pandas_detect", "rows": len(df), "seconds": time.perf_counter() - started,
                      "pandas": pd.__version__}))


if __name__ == "__main__":
    main()

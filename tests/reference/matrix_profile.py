#!/usr/bin/env python3
"""stumpy's left matrix profile of non-normalised series, for adr's subsequence_knn with
k = 1 to be compared with: the distance from each window to its nearest earlier one.

    python matrix_profile.py M ROWS SERIES.csv [SERIES.csv ...] > reference.json

The first ROWS values of each CSV's `value` column (the NAB layout), windows of M points,
stumpy's exclusion zone set to one window (STUMPY_EXCL_ZONE_DENOM = 1). Output:
{"versions": {...}, "series": {path: [left distance by window start, null if none]}}.
Versions: requirements.txt.
"""
import csv
import json
import math
import sys
from importlib.metadata import version

import numpy as np
import stumpy


def values(path, rows):
    with open(path, newline="") as f:
        return [float(r["value"]) for _, r in zip(range(rows), csv.DictReader(f))]


def main():
    m, rows = int(sys.argv[1]), int(sys.argv[2])
    stumpy.config.STUMPY_EXCL_ZONE_DENOM = 1
    series = {}
    for path in sys.argv[3:]:
        profile = stumpy.aampi(np.array(values(path, rows)), m, egress=False)
        series[path] = [None if math.isinf(d) else float(d) for d in profile.left_P_]
    json.dump({"versions": {"stumpy": version("stumpy")}, "series": series}, sys.stdout)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""River's change detectors on real series, for adr's realtime detectors to be compared
with: the rows where River's PageHinkley and ADWIN raise their drift flag.

    python realtime.py SERIES.csv [SERIES.csv ...] > reference.json

Each CSV has a header and a `value` column (the NAB layout). Output:
{"versions": {...}, "series": {path: {case: [row indices]}}}. Versions: requirements.txt.
"""
import csv
import json
import sys
from importlib.metadata import version

from river import drift

CASES = {
    "page_hinkley": lambda: drift.PageHinkley(),
    "page_hinkley threshold=5 delta=0.05": lambda: drift.PageHinkley(threshold=5, delta=0.05),
    # integer sums: raw scores land exactly on the threshold
    "page_hinkley threshold=4 delta=0 alpha=1 min_instances=1": lambda: drift.PageHinkley(
        threshold=4, delta=0, alpha=1, min_instances=1
    ),
    "adwin": lambda: drift.ADWIN(),
    "adwin delta=0.05 clock=8": lambda: drift.ADWIN(delta=0.05, clock=8),
}


def values(path):
    with open(path, newline="") as f:
        return [float(r["value"]) for r in csv.DictReader(f)]


def alarms(detector, xs):
    out = []
    for i, x in enumerate(xs):
        detector.update(x)
        if detector.drift_detected:
            out.append(i)
    return out


def main():
    series = {}
    for path in sys.argv[1:]:
        xs = values(path)
        series[path] = {case: alarms(make(), xs) for case, make in CASES.items()}
    json.dump({"versions": {"river": version("river")}, "series": series}, sys.stdout)


if __name__ == "__main__":
    main()

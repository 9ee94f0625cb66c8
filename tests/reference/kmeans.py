#!/usr/bin/env python3
"""River's online k-means on real series, for adr's realtime.kmeans to be compared with:
the distance from each row to its nearest centre before the centre moves.

    python kmeans.py ROWS SERIES.csv [SERIES.csv ...] > reference.json

Rows are (value, value − previous value) over the first ROWS values of each CSV's `value`
column (the NAB layout). River draws its first centres at random; adr takes the first k
rows, so River's centres are set to them here and both go on from row k. Output:
{"versions": {...}, "series": {path: {case: [distance by row from row k]}}}.
Versions: requirements.txt.
"""
import csv
import json
import sys
from collections import defaultdict
from importlib.metadata import version

from river import cluster

CASES = {
    "defaults": {},
    "k=3 halflife=0.1 p=1": {"n_clusters": 3, "halflife": 0.1, "p": 1},
    "k=4 halflife=0.3 p=3": {"n_clusters": 4, "halflife": 0.3, "p": 3},
}


def rows(path, n):
    with open(path, newline="") as f:
        values = [float(r["value"]) for _, r in zip(range(n), csv.DictReader(f))]
    return [{"v": b, "d": b - a} for a, b in zip(values, values[1:])]


def run(params, xs):
    model = cluster.KMeans(**params)
    k, p = model.n_clusters, model.p
    for c, x in enumerate(xs[:k]):
        model.centers[c] = defaultdict(float, x)
    distances = []
    for x in xs[k:]:
        closest = model.predict_one(x)
        centre = model.centers[closest]
        distances.append(sum(abs(centre[i] - x[i]) ** p for i in x) ** (1 / p))
        model.learn_one(x)
    return distances


def main():
    n = int(sys.argv[1])
    series = {}
    for path in sys.argv[2:]:
        xs = rows(path, n)
        series[path] = {case: run(params, xs) for case, params in CASES.items()}
    json.dump({"versions": {"river": version("river")}, "series": series}, sys.stdout)


if __name__ == "__main__":
    main()

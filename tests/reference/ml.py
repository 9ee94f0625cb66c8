#!/usr/bin/env python3
"""PyOD's scores on hostile data, for adr's ML detectors to be compared with: each file's
first 200 rows train, the rest are scored with `decision_function`.

    python ml.py DATA.csv [DATA.csv ...] > reference.json

Each CSV has a header and columns `a`, `b`, `c`. Output: {"versions": {...}, "data":
{path: {case: {"scores": [...], "threshold": t} or {"error": "..."}}}}; a non-finite
score or threshold is null. Versions: requirements.txt.
"""
import csv
import json
import sys
from importlib.metadata import version

import numpy as np
from pyod.models.hbos import HBOS
from pyod.models.knn import KNN
from pyod.models.lof import LOF
from pyod.models.ocsvm import OCSVM
from pyod.models.pca import PCA

TRAIN = 200
CASES = {
    "hbos": HBOS,
    "knn k=5": lambda: KNN(n_neighbors=5),
    "lof k=20": lambda: LOF(n_neighbors=20),
    "pca": PCA,
    "one_class_svm": OCSVM,
}


def load(path):
    with open(path, newline="") as f:
        return np.array([[float(r[c]) for c in ("a", "b", "c")] for r in csv.DictReader(f)])


def main():
    data = {}
    for path in sys.argv[1:]:
        x = load(path)
        train, test = x[:TRAIN], x[TRAIN:]
        data[path] = {}
        for case, make in CASES.items():
            try:
                model = make().fit(train)
                scores = model.decision_function(test)
                data[path][case] = {
                    "scores": [float(s) if np.isfinite(s) else None for s in scores],
                    "threshold": float(model.threshold_) if np.isfinite(model.threshold_) else None,
                }
            except Exception as e:  # noqa: BLE001 - the error is the reference's answer
                data[path][case] = {"error": str(e)}
    json.dump({"versions": {"pyod": version("pyod"), "scikit-learn": version("scikit-learn")}, "data": data}, sys.stdout)


if __name__ == "__main__":
    main()

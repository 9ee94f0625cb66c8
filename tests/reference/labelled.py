#!/usr/bin/env python3
"""scikit-learn's point metrics and the prts package's range metrics (Tatbul et al. 2018),
for adr's `adr eval RULES --data DIR --labels FILE` to be compared with.

    python labelled.py cases CASES.json              # prts on given series
    python labelled.py rows ROWS.csv ALPHA BIAS CARD # on the rows `adr eval --out` wrote

CASES.json: [{"real": [0/1...], "pred": [0/1...], "alpha": a, "bias": b,
"cardinality": c}, ...] → [{"precision": p, "recall": r}, ...] (prts applies alpha to
both; adr's precision has no existence term, so compare precision at alpha 0 only).
ROWS.csv (file,row,timestamp,score,anomalous,label): pooled point metrics (undetermined
scores ranked lowest) and, per file with both a window and an alarm, prts precision and
recall. Versions: requirements.txt (prts is installed with --no-deps: it pins numpy < 2
but runs on numpy 2).
"""
import csv
import json
import sys
from collections import defaultdict
from importlib.metadata import version

import numpy as np
import prts
from sklearn import metrics


def ranges(real, pred, alpha, bias, cardinality):
    return {
        "precision": prts.ts_precision(real, pred, alpha=alpha, cardinality=cardinality, bias=bias),
        "recall": prts.ts_recall(real, pred, alpha=alpha, cardinality=cardinality, bias=bias),
    }


def cases(path):
    with open(path) as f:
        return [ranges(np.array(c["real"]), np.array(c["pred"]), c["alpha"], c["bias"], c["cardinality"])
                for c in json.load(f)]


def rows(path, alpha, bias, cardinality):
    by_file = defaultdict(lambda: ([], [], []))
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            score, pred, label = by_file[r["file"]]
            score.append(float(r["score"]) if r["score"] else np.nan)
            pred.append(int(r["anomalous"]))
            label.append(int(r["label"]))
    score = np.concatenate([np.array(v[0]) for v in by_file.values()])
    pred = np.concatenate([np.array(v[1]) for v in by_file.values()])
    label = np.concatenate([np.array(v[2]) for v in by_file.values()])
    # the ranking figures are over the rows with a score (undetermined rows left out)
    scored = ~np.isnan(score)
    point = {
        "precision": metrics.precision_score(label, pred, zero_division=0),
        "recall": metrics.recall_score(label, pred, zero_division=0),
        "f1": metrics.f1_score(label, pred, zero_division=0),
        "roc_auc": metrics.roc_auc_score(label[scored], score[scored]),
        "pr_auc": metrics.average_precision_score(label[scored], score[scored]),
    }
    files = {}
    for name, (_, p, l) in by_file.items():
        p, l = np.array(p), np.array(l)
        if p.any() and l.any():
            files[name] = ranges(l, p, alpha, bias, cardinality)
    return {"point": point, "files": files}


def main():
    versions = {"scikit-learn": version("scikit-learn"), "prts": version("prts")}
    if sys.argv[1] == "cases":
        out = {"versions": versions, "cases": cases(sys.argv[2])}
    else:
        out = {"versions": versions, **rows(sys.argv[2], float(sys.argv[3]), sys.argv[4], sys.argv[5])}
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""adr's ML detectors against PyOD on the ODDS sets (PyOD's protocol), in one run.

    eval "$(bash ../shared/tools/peers/setup.sh)"
    cargo build --release
    $PEERS_PYTHON benches/peers/compare_odds.py [--methods PCA IForest ...] [--markdown]

For each method: PyOD's figure is the re-run in ../shared/data/odds/reference/roc_pyod.csv
where it has the method; otherwise (PCA) `odds_eval.py reference` runs PyOD here on the
same splits first. adr's figure is `adr eval odds ml.<detector> --json` (mean of 5 seeds
for Isolation Forest). Prints, per set, adr / PyOD / the difference, and the largest
shortfall.
"""
import argparse
import csv
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
ODDS = os.path.join(ROOT, "..", "shared", "data", "odds")
EVAL = os.path.join(ROOT, "..", "shared", "tools", "odds_eval.py")
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))

DETECTORS = {"IForest": "isolation_forest", "LOF": "lof", "OCSVM": "one_class_svm", "HBOS": "hbos",
             "KNN": "knn", "ECOD": "ecod", "COPOD": "copod", "PCA": "pca"}


def read_table(path):
    with open(path, newline="") as f:
        return {r["dataset"]: r for r in csv.DictReader(f)}


def pyod_here(method):
    table = read_table(os.path.join(ODDS, "reference", "roc_pyod.csv"))
    if method in next(iter(table.values())):
        return {k: float(v[method]) for k, v in table.items() if v[method]}
    out = os.path.join(TARGET, f"odds-reference-{method}")
    print(f"+ PyOD {method} on the ODDS splits (not in reference/)", file=sys.stderr)
    subprocess.run([sys.executable, EVAL, "reference", "--protocol", "pyod", "--methods", method, "--csv", out],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return {k: float(v[method]) for k, v in read_table(os.path.join(out, "roc_pyod.csv")).items() if v.get(method)}


def adr(method, extra):
    cmd = [os.path.join(TARGET, "release", "adr"), "eval", "odds", f"ml.{DETECTORS[method]}", "--data", ODDS,
           "--json", "-q"] + extra
    if method == "IForest":
        cmd += ["--seeds", "5"]
    print("+ " + " ".join(cmd), file=sys.stderr)
    doc = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    return {s["name"]: s["roc_auc"] for s in doc["sets"]}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--methods", nargs="+", default=["PCA"], choices=list(DETECTORS))
    ap.add_argument("--param", action="append", default=[], help="NAME=VALUE passed to adr eval odds")
    args = ap.parse_args()
    extra = [x for p in args.param for x in ("--param", p)]
    for method in args.methods:
        theirs, ours = pyod_here(method), adr(method, extra)
        print(f"\n{method}: adr ml.{DETECTORS[method]} / PyOD here\n")
        print("| set | adr | PyOD | diff |")
        print("|---|---:|---:|---:|")
        diffs = []
        for name in sorted(ours):
            if name in theirs:
                diffs.append(ours[name] - theirs[name])
                print(f"| {name} | {ours[name]:.4f} | {theirs[name]:.4f} | {diffs[-1]:+.4f} |")
            else:
                print(f"| {name} | {ours[name]:.4f} | (PyOD failed) | |")
        if diffs:
            print(f"\n{len(diffs)} sets: mean difference {sum(diffs) / len(diffs):+.4f}, "
                  f"largest shortfall {min(diffs):+.4f}")


if __name__ == "__main__":
    main()

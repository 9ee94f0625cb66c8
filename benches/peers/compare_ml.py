#!/usr/bin/env python3
"""adr's ML detectors against scikit-learn and PyOD, on identical data, in one run.

    eval "$(bash ../shared/tools/peers/setup.sh)"
    cargo build --release -p adr-plugin-ml -p adr-benches
    $PEERS_PYTHON benches/peers/compare_ml.py [--sizes 10000 100000 1000000] [--json out.json]

1. dumps the peer harness's inputs (blobs_<n>.f64, n x 8, and the manifest) to target/peer-inputs;
2. times the peers with ../shared/tools/peers/bench.py on those files (each case at the
   sizes it runs at: LOF, KNN and the one-class SVM stop at 100k, as the harness says);
3. times adr's detectors through the plugin boundary with target/release/ml_bench on the
   same files, the same settings and the same fit / score split;
4. prints a Markdown table of the figures, the ratios and the issue's bars.
"""
import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PEERS = os.path.join(ROOT, "..", "shared", "tools", "peers", "bench.py")
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))

# case: (bar: adr at least this many times faster on fit + score, or None; the sizes the bar is for)
BARS = {
    "isolation_forest": (5.0, {100_000, 1_000_000}),
    "lof": (3.0, {100_000}),
    "one_class_svm": (1.0, {10_000, 100_000}),
    "hbos": (3.0, {1_000_000}),
    "ecod": (3.0, {1_000_000}),
    "copod": (3.0, {1_000_000}),
    "knn": (3.0, {100_000}),
}


def run(cmd, **kw):
    print("+ " + " ".join(cmd), file=sys.stderr)
    return subprocess.run(cmd, check=True, **kw)


def total(r):
    return r["total_s"] if r.get("total_s") is not None else r.get("fit_s")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--json", help="also write the figures here")
    args = ap.parse_args()

    inputs = os.path.join(TARGET, "peer-inputs")
    if not os.path.exists(os.path.join(inputs, "manifest.json")):
        run([sys.executable, PEERS, "dump", "--out", inputs])
    peers_json = os.path.join(TARGET, "peer-ml.json")
    cases = list(BARS) + ["isolation_forest_one_row"]
    run([sys.executable, PEERS, "run", "--only", *cases, "--sizes", *map(str, args.sizes),
         "--inputs", inputs, "--json", peers_json], stdout=subprocess.DEVNULL)
    peers = [r for r in json.load(open(peers_json))["results"] if "skipped" not in r and "error" not in r]

    pairs = [(r["case"], r["n"]) for r in peers] + [("isolation_forest_memory", 1_000_000)]
    env = dict(os.environ, ADR_PEER_INPUTS=inputs)
    argv = [os.path.join(TARGET, "release", "ml_bench")] + [str(x) for p in pairs for x in p]
    ours = {(r["case"], r["n"]): r for r in
            (json.loads(line) for line in run(argv, env=env, capture_output=True, text=True).stdout.splitlines())}

    print(f"\nadr threads: {next(iter(ours.values()))['threads']}; load now: {os.getloadavg()[0]:.1f}\n")
    print("| case | n | peer | peer fit + score s | adr fit + score s | ratio | bar |")
    print("|---|---:|---|---:|---:|---:|---|")
    for r in peers:
        if r["case"] == "isolation_forest_one_row":
            continue
        us = ours[(r["case"], r["n"])]
        # scikit-learn's LOF scores every row inside `fit`: compare with adr's fit, which
        # computes every training row's score too.
        mine = us["fit_s"] if r.get("score_s") is None else us["total_s"]
        ratio = total(r) / mine
        bar, sizes = BARS[r["case"]]
        verdict = f">= {bar:g}x {'ok' if ratio >= bar else 'SHORT'}" if r["n"] in sizes else ""
        what = " (fit)" if r.get("score_s") is None else ""
        print(f"| {r['case']}{what} | {r['n']} | {r['library']} {r['version']} | {total(r):.4g} | {mine:.4g} "
              f"| {ratio:.2f}x | {verdict} |")
    for r in peers:
        if r["case"] == "isolation_forest_one_row":
            us = ours[(r["case"], r["n"])]
            print(f"\nIsolation Forest, one event: adr p50 {us['p50_s'] * 1e6:.1f} us, p99 {us['p99_s'] * 1e6:.1f} us "
                  f"(bar p99 <= 20 us); scikit-learn score_samples on one row p50 {r['p50_s'] * 1e3:.2f} ms, "
                  f"p99 {r['p99_s'] * 1e3:.2f} ms")
    mem = ours[("isolation_forest_memory", 1_000_000)]
    if mem.get("fit_peak_beyond_mib") is not None:
        share = mem["fit_peak_beyond_mib"] / mem["input_mib"]
        print(f"Isolation Forest fit on 1M x 8: peak resident memory beyond the input {mem['fit_peak_beyond_mib']:.0f} MiB "
              f"= {share:.2f}x the input's {mem['input_mib']:.0f} MiB (bar < 2x)")
    if args.json:
        json.dump({"peers": peers, "adr": list(ours.values())}, open(args.json, "w"), indent=1)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""adr's statistical detectors against the Python peers, on identical data, in one run.

    eval "$(bash ../shared/tools/peers/setup.sh)"
    cargo build --release
    $PEERS_PYTHON benches/peers/compare_statistical.py [--rows 10000000] [--json out.json]

1. dumps the peer harness's inputs (series_1000000.f64 and its manifest) to target/peer-inputs;
2. times numpy's vectorised rolling z-score and River's per-event rolling z-score with
   ../shared/tools/peers/bench.py, and adr's detectors through the plugin boundary with
   target/release/peer_bench, on that same file;
3. writes a CSV of --rows rows and times `adr detect statistical.zscore` against pandas
   (benches/peers/pandas_detect.py) end to end, with each one's peak resident memory;
4. prints a Markdown table of the figures and the ratios.
"""
import argparse
import json
import os
import resource  # noqa: F401  (used in MEASURE's child)
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PEERS = os.path.join(ROOT, "..", "shared", "tools", "peers", "bench.py")
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))


def run(cmd, **kw):
    print("+ " + " ".join(cmd), file=sys.stderr)
    return subprocess.run(cmd, check=True, **kw)


# Runs its arguments as its only child and prints that child's peak RSS (KiB) on stderr's
# last line: RUSAGE_CHILDREN of a fresh process measures exactly one command.
MEASURE = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); "
           "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); sys.exit(r.returncode)")


def timed_child(cmd):
    """Wall seconds, peak RSS (MiB) and output of one command."""
    started = time.perf_counter()
    out = run([sys.executable, "-c", MEASURE] + cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    peak_kib = int(out.stderr.strip().splitlines()[-1])
    return seconds, peak_kib / 1024, out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=10_000_000, help="rows of the end-to-end CSV")
    ap.add_argument("--json", help="also write the figures here")
    args = ap.parse_args()
    import numpy as np

    inputs = os.path.join(TARGET, "peer-inputs")
    if not os.path.exists(os.path.join(inputs, "manifest.json")):
        run([sys.executable, PEERS, "dump", "--out", inputs])
    peers_json = os.path.join(TARGET, "peer-statistical.json")
    run([sys.executable, PEERS, "run", "--only", "rolling_zscore_batch", "rolling_zscore_stream",
         "--sizes", "1000000", "--inputs", inputs, "--json", peers_json], stdout=subprocess.DEVNULL)
    peers = {r["case"]: r for r in json.load(open(peers_json))["results"]}
    env = dict(os.environ, ADR_PEER_INPUTS=inputs)
    ours = [json.loads(line) for line in run([os.path.join(TARGET, "release", "peer_bench")], env=env,
                                             capture_output=True, text=True).stdout.splitlines()]
    ours = {r["case"]: r for r in ours}

    csv_in = os.path.join(TARGET, f"detect-{args.rows}.csv")
    if not os.path.exists(csv_in):
        rng = np.random.default_rng(3)
        with open(csv_in, "w") as f:
            f.write("timestamp,value\n")
            for start in range(0, args.rows, 1_000_000):
                n = min(1_000_000, args.rows - start)
                ts = 1_600_000_000 + start + np.arange(n)
                v = rng.normal(100.0, 5.0, n)
                f.write("".join(f"{t},{x:.4f}\n" for t, x in zip(ts, v)))
    adr_s, adr_rss, _ = timed_child([os.path.join(TARGET, "release", "adr"), "detect", "statistical.zscore",
                                     "-c", "value", "-p", "window=500", "-i", csv_in,
                                     "-o", os.path.join(TARGET, "detect-out-adr.csv"), "--quiet"])
    pd_s, pd_rss, pd_out = timed_child([sys.executable, os.path.join(HERE, "pandas_detect.py"), csv_in,
                                        os.path.join(TARGET, "detect-out-pandas.csv")])
    pandas_version = json.loads(pd_out.stdout)["pandas"]

    np_rate = peers["rolling_zscore_batch"]["rows_per_s"]
    river_rate = peers["rolling_zscore_stream"]["rows_per_s"]
    rows = [
        ("rolling z-score batch, 1M, w=500", "numpy " + peers["rolling_zscore_batch"]["version"], np_rate,
         "adr zscore (plugin boundary)", ours["zscore_batch"]["points_per_s"], 2.0),
        ("rolling MAD batch, 1M, w=500", "numpy z-score (same bar)", np_rate,
         "adr mad (plugin boundary)", ours["mad_batch"]["points_per_s"], 2.0),
        ("per-event rolling z-score, 1M, w=500", "River " + peers["rolling_zscore_stream"]["version"], river_rate,
         "adr zscore update (plugin boundary)", ours["zscore_stream"]["points_per_s"], 30.0),
        (f"detect end to end, {args.rows} rows", f"pandas {pandas_version}", args.rows / pd_s,
         "adr detect", args.rows / adr_s, 3.0),
        ("batch: plugin boundary vs rlib", "adr zscore rlib", ours["zscore_batch_rlib"]["points_per_s"],
         "adr zscore (plugin boundary)", ours["zscore_batch"]["points_per_s"], 0.95),
    ]
    print(f"\ninput: {ours['zscore_batch']['input']}; adr threads: {ours['zscore_batch']['threads']}; "
          f"load before: {os.getloadavg()[0]:.1f}\n")
    print("| case | peer | peer rows/s | adr | adr rows/s | ratio | bar |")
    print("|---|---|---|---|---|---|---|")
    for case, peer, pr, us, ur, bar in rows:
        ratio = ur / pr
        print(f"| {case} | {peer} | {pr:.3g} | {us} | {ur:.3g} | {ratio:.2f}x | >= {bar}x {'ok' if ratio >= bar else 'SHORT'} |")
    print(f"\npeak RSS, detect end to end: adr {adr_rss:.0f} MiB, pandas {pd_rss:.0f} MiB (bar: adr < 100 MiB)")
    if args.json:
        json.dump({"peers": peers, "adr": ours, "detect": {"rows": args.rows, "adr_s": adr_s, "pandas_s": pd_s,
                   "adr_peak_rss_mib": adr_rss, "pandas_peak_rss_mib": pd_rss}}, open(args.json, "w"), indent=1)


if __name__ == "__main__":
    main()

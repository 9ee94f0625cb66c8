#!/usr/bin/env python3
"""adr's realtime detectors against River and rrcf, on identical data, in one run.

    eval "$(bash ../shared/tools/peers/setup.sh)"
    cargo build --release -p adr-cli -p adr-plugin-realtime -p adr-benches
    $PEERS_PYTHON benches/peers/compare_realtime.py [--json out.json] [--skip-rrcf]

1. dumps the peer harness's inputs (series_<n>.f64 and labels) to target/peer-inputs;
2. speed: times the peers with ../shared/tools/peers/bench.py on those files (River's
   HalfSpaceTrees and rolling z-score per event, numpy's vectorised rolling z-score, the
   rrcf package's streaming loop) and adr's detectors through the plugin boundary with
   target/release/realtime_bench on the same files; prints events/s, ratios and the bars;
3. agreement: runs River's PageHinkley and ADWIN and adr's on series_100000 (`adr detect`)
   and compares the alarm positions; ROC-AUC against the series' labels (spikes and level
   shifts) for River's and adr's Half-Space Trees and for rrcf's and adr's random cut
   forest, with the same settings.
"""
import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PEERS = os.path.join(ROOT, "..", "shared", "tools", "peers", "bench.py")
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
ADR = os.path.join(TARGET, "release", "adr")

# adr case, n, peer case, bar (adr events/s at least this many times the peer's)
SPEED = [
    ("half_space_trees", 100_000, "half_space_trees", 10.0),
    ("random_cut_forest", 10_000, "rrcf_stream", 100.0),
    ("random_cut_forest_batch", 10_000, "rrcf_stream", 100.0),
    ("cusum", 1_000_000, "rolling_zscore_batch", 1.0),
    ("page_hinkley", 1_000_000, "rolling_zscore_batch", 1.0),
    ("ewma", 1_000_000, "rolling_zscore_batch", 1.0),
    # the bar for BOCPD with run-length truncation, at three truncations: the
    # default (at most 1000 runs), 20 runs and 8 runs, each scoring as well as the default
    # on TCPD (docs/realtime-evaluation.md); one update per event, and one batch
    ("bocpd", 100_000, "rolling_zscore_stream", 20.0),
    ("bocpd_truncated", 100_000, "rolling_zscore_stream", 20.0),
    ("bocpd_runs_8", 100_000, "rolling_zscore_stream", 20.0),
    ("bocpd_truncated_batch", 100_000, "rolling_zscore_stream", 20.0),
    ("bocpd_runs_8_batch", 100_000, "rolling_zscore_stream", 20.0),
    ("spot", 1_000_000, "rolling_zscore_stream", 30.0),
    ("spot_batch", 1_000_000, "rolling_zscore_stream", 30.0),
    # no bar in the issue: the nearest peer of rules/nab.adr's detector, timed below
    ("subsequence_knn", 100_000, "stumpy_aampi", None),
    # no bar in the issue: River's online k-means with its defaults, timed below
    ("kmeans", 100_000, "river_kmeans", None),
]


def run(cmd, **kw):
    print("+ " + " ".join(cmd), file=sys.stderr)
    return subprocess.run(cmd, check=True, **kw)


def load(inputs, name):
    x = np.fromfile(os.path.join(inputs, f"{name}.f64"), dtype="<f8")
    y = np.fromfile(os.path.join(inputs, f"{name}.labels.u8"), dtype="u1")
    return x, y


def adr_detect(detector, x, params):
    """adr's raw scores and verdicts for series x, through `adr detect`."""
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "x.csv")
        np.savetxt(path, x, header="x", comments="", fmt="%.17g")
        cmd = [ADR, "detect", detector, "-c", "x", "-i", path, "-q"]
        for k, v in params.items():
            cmd += ["-p", f"{k}={v}"]
        out = run(cmd, capture_output=True, text=True).stdout
    rows = list(csv.DictReader(out.splitlines()))
    raw = np.array([float(r["score"]) if r["score"] else np.nan for r in rows])
    verdict = [r["verdict"] for r in rows]
    return raw, verdict


def auc(labels, scores):
    from sklearn.metrics import roc_auc_score
    ok = np.isfinite(scores)
    return roc_auc_score(labels[ok] > 0, scores[ok])


def stumpy_aampi(inputs, events=3000):
    """stumpy's incremental left matrix profile (aampi, egress, k = 3) per event, with the
    window rules/nab.adr's subsequence_knn keeps (750 earlier windows of 20, one-window
    exclusion zone); the bench harness has no such case, so it is timed here."""
    import time
    from importlib.metadata import version
    import stumpy
    stumpy.config.STUMPY_EXCL_ZONE_DENOM = 1
    x, _ = load(inputs, "series_100000")
    m = 20
    start = 750 + 2 * m
    profile = stumpy.aampi(x[:start], m, egress=True, k=3)
    for v in x[start:start + 200]:        # numba compiles on the first updates
        profile.update(v)
    t = time.perf_counter()
    for v in x[start + 200:start + 200 + events]:
        profile.update(v)
    seconds = time.perf_counter() - t
    return {"case": "stumpy_aampi", "n": 100_000, "rows_per_s": events / seconds,
            "library": "stumpy", "version": version("stumpy")}


def river_kmeans(inputs, events=20_000):
    """River's cluster.KMeans with its defaults (5 centres, halflife 0.5) per event: the
    nearest centre, then its move (learn_predict_one); the bench harness has no such case,
    so it is timed here."""
    import time
    from importlib.metadata import version
    from river import cluster
    x, _ = load(inputs, "series_100000")
    model = cluster.KMeans(seed=42)
    rows = [{"x": v} for v in x[:events].tolist()]
    t = time.perf_counter()
    for row in rows:
        model.learn_predict_one(row)
    seconds = time.perf_counter() - t
    return {"case": "river_kmeans", "n": 100_000, "rows_per_s": events / seconds,
            "library": "River", "version": version("river")}


def agreement(inputs, skip_rrcf):
    from river import anomaly, drift
    out = {}
    x, y = load(inputs, "series_100000")
    # Page-Hinkley and ADWIN: the alarm positions.
    for name, peer, params in (
        ("page_hinkley", drift.PageHinkley(), {}),
        ("adwin", drift.ADWIN(), {}),
    ):
        theirs = []
        for i, v in enumerate(x.tolist()):
            peer.update(v)
            if peer.drift_detected:
                theirs.append(i)
        _, verdict = adr_detect(f"realtime.{name}", x, params)
        ours = [i for i, v in enumerate(verdict) if v == "anomaly"]
        same = len(set(ours) & set(theirs))
        out[name] = {"river_alarms": len(theirs), "adr_alarms": len(ours), "same_positions": same}
    # Half-Space Trees: ROC-AUC on the labels, same settings, inputs scaled to [0, 1].
    x10, y10 = load(inputs, "series_10000")
    scaled = (x10 - x10.min()) / (x10.max() - x10.min())
    hst = anomaly.HalfSpaceTrees(n_trees=10, height=8, window_size=250, seed=42)
    river = []
    for v in scaled.tolist():
        river.append(hst.score_one({"x": v}))
        hst.learn_one({"x": v})
    river = np.array(river)
    ours, _ = adr_detect("realtime.half_space_trees", scaled,
                         {"trees": 10, "height": 8, "window": 250, "limits": "unit"})
    first = 250  # both score nothing in the first window
    out["half_space_trees"] = {"river_auc": auc(y10[first:], river[first:]),
                               "adr_auc": auc(y10[first:], ours[first:])}
    if not skip_rrcf:
        import rrcf
        n = 5000
        forest = [rrcf.RCTree() for _ in range(20)]
        codisp = np.zeros(n)
        for i, p in enumerate(x10[:n].tolist()):
            for tree in forest:
                if len(tree.leaves) > 256:
                    tree.forget_point(i - 256)
                tree.insert_point(p, index=i)
                codisp[i] += tree.codisp(i) / 20 if i > 0 else 0.0
        ours, _ = adr_detect("realtime.random_cut_forest", x10[:n], {"trees": 20, "size": 256})
        out["random_cut_forest"] = {"rrcf_auc": auc(y10[1:n], codisp[1:n]), "adr_auc": auc(y10[1:n], ours[1:n]),
                                    "rows": n}
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", help="also write the figures here")
    ap.add_argument("--skip-rrcf", action="store_true", help="leave out rrcf (about 40 s of pure Python)")
    args = ap.parse_args()

    inputs = os.path.join(TARGET, "peer-inputs")
    if not os.path.exists(os.path.join(inputs, "manifest.json")):
        run([sys.executable, PEERS, "dump", "--out", inputs])
    peers = {}
    groups = [(["half_space_trees"], [100_000]), (["rolling_zscore_stream"], [100_000, 1_000_000]),
              (["rolling_zscore_batch"], [1_000_000])]
    if not args.skip_rrcf:
        groups.append((["rrcf_stream"], [10_000]))
    for cases, sizes in groups:
        path = os.path.join(TARGET, "peer-realtime.json")
        run([sys.executable, PEERS, "run", "--only", *cases, "--sizes", *map(str, sizes),
             "--inputs", inputs, "--json", path], stdout=subprocess.DEVNULL)
        for r in json.load(open(path))["results"]:
            if "skipped" not in r and "error" not in r:
                peers[(r["case"], r["n"])] = r

    peers[("stumpy_aampi", 100_000)] = stumpy_aampi(inputs)
    peers[("river_kmeans", 100_000)] = river_kmeans(inputs)

    pairs = [(c, n) for c, n, p, _ in SPEED if not (args.skip_rrcf and p == "rrcf_stream")]
    env = dict(os.environ, ADR_PEER_INPUTS=inputs)
    argv = [os.path.join(TARGET, "release", "realtime_bench")] + [str(v) for p in pairs for v in p]
    ours = {(r["case"], r["n"]): r for r in
            (json.loads(line) for line in run(argv, env=env, capture_output=True, text=True).stdout.splitlines())}

    print(f"\nadr threads: {next(iter(ours.values()))['threads']}; load now: {os.getloadavg()[0]:.1f}\n")
    print("| adr case | n | peer | peer events/s | adr events/s | ratio | bar |")
    print("|---|---:|---|---:|---:|---:|---|")
    for case, n, peer_case, bar in SPEED:
        if (case, n) not in ours:
            continue
        # the per-event peers are timed at the largest size they ran at
        peer = peers.get((peer_case, n)) or max((r for (c, _), r in peers.items() if c == peer_case),
                                                key=lambda r: r["n"])
        mine = ours[(case, n)]["events_per_s"]
        ratio = mine / peer["rows_per_s"]
        verdict = "none set" if bar is None else f">= {bar:g}x {'ok' if ratio >= bar else 'SHORT'}"
        print(f"| {case} | {n} | {peer['library']} {peer['version']} {peer_case} (n {peer['n']}) "
              f"| {peer['rows_per_s']:.4g} | {mine:.4g} | {ratio:.1f}x | {verdict} |")

    agree = agreement(inputs, args.skip_rrcf)
    print("\n| detector | peer | agreement |")
    print("|---|---|---|")
    for name in ("page_hinkley", "adwin"):
        a = agree[name]
        print(f"| {name} | River | alarms: River {a['river_alarms']}, adr {a['adr_alarms']}, "
              f"at the same position {a['same_positions']} |")
    h = agree["half_space_trees"]
    print(f"| half_space_trees | River | ROC-AUC on series_10000's labels: River {h['river_auc']:.4f}, "
          f"adr {h['adr_auc']:.4f} |")
    if "random_cut_forest" in agree:
        r = agree["random_cut_forest"]
        print(f"| random_cut_forest | rrcf | ROC-AUC on the first {r['rows']} rows' labels: rrcf "
              f"{r['rrcf_auc']:.4f}, adr {r['adr_auc']:.4f} |")
    if args.json:
        json.dump({"peers": list(peers.values()), "adr": list(ours.values()), "agreement": agree},
                  open(args.json, "w"), indent=1)


if __name__ == "__main__":
    main()

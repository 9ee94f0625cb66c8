"""`adr serve` against the seed's service design (seed_service.py: FastAPI + uvicorn), on
this machine, with one load generator (target/release/serve_load), in one sitting.

    cargo build --release -p adr-cli -p adr-plugin-statistical -p adr-benches
    python3 -m venv /tmp/serve-peer && /tmp/serve-peer/bin/pip install -r benches/peers/serve-requirements.txt
    /tmp/serve-peer/bin/python benches/peers/compare_serve.py --json target/compare_serve.json

Measures, each for --seconds:
- WebSocket events/s at saturation (frames of --batch events, --clients connections):
  adr through rules/market_stress.adr, the peer's rolling z-score;
- predict requests/s at saturation (one event a request);
- p99 latency of each at the peer's own saturation rate (adr paced to it);
- adr's WebSocket p99 at half of 200 k events/s (the issue's absolute bar), in frames of
  100 events.
Loopback only; every run is bounded in time.
"""

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RELEASE = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "release"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(port: int, seconds: float = 60) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"nothing listens on {port} after {seconds} s")


def load(mode: str, port: int, seconds: float, **flags) -> dict:
    args = [str(RELEASE / "serve_load"), mode, "--url", f"http://127.0.0.1:{port}", "--seconds", str(seconds)]
    for k, v in flags.items():
        if v is not None:
            args += [f"--{k.replace('_', '-')}", str(v)]
    out = subprocess.run(args, capture_output=True, text=True, timeout=seconds + 120)
    if out.returncode != 0:
        sys.exit(f"serve_load failed: {out.stderr}")
    report = json.loads(out.stdout)
    print(f"  {mode:8} {port}: {report['events_per_s']:>12,.0f}/s  p99 {report['latency_ms']['p99']:8.2f} ms  errors {report['errors']}", file=sys.stderr)
    return report


def post(port: int, path: str, body: dict, token: str) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(request, timeout=30) as r:
        return json.loads(r.read())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--many", type=int, default=64, help="clients of the many-clients case")
    parser.add_argument("--predict-clients", type=int, default=8)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    load_before = os.getloadavg()
    for binary in ["adr", "serve_load", "libadr_plugin_statistical.so"]:
        if not (RELEASE / binary).exists():
            sys.exit(f"{RELEASE / binary} is missing: cargo build --release -p adr-cli -p adr-plugin-statistical -p adr-benches")

    data = Path(tempfile.mkdtemp(prefix="adr-bench-"))
    plugins = data / "plugins"
    plugins.mkdir()
    shutil.copy(RELEASE / "libadr_plugin_statistical.so", plugins)
    adr_port, peer_port = free_port(), free_port()
    env = dict(os.environ, ADR_LOG="error")
    token = subprocess.run(
        [str(RELEASE / "adr"), "serve", "--data-dir", str(data), "--new-token", "bench"],
        capture_output=True, text=True, check=True, cwd=ROOT, env=env,
    ).stdout.strip()
    adr = subprocess.Popen(
        [str(RELEASE / "adr"), "--plugins", str(plugins), "serve", "--data-dir", str(data), "--port", str(adr_port)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    peer = subprocess.Popen(
        [sys.executable, "seed_service.py", "--port", str(peer_port), "--workers", str(os.cpu_count() or 2)],
        cwd=Path(__file__).parent, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(adr_port)
        wait_for(peer_port)
        model = post(adr_port, "/api/v1/detectors/train", {
            "detector": "statistical.zscore",
            "params": {"window": 60, "threshold": 4},
            "columns": ["price"],
            "rows": [[100.0 + (i % 7) * 0.1] for i in range(200)],
        }, token)["model_id"]
        s, c, b = args.seconds, args.clients, args.batch
        print("saturation, one event a message (the seed's protocol)", file=sys.stderr)
        ws1_adr = load("ws", adr_port, s, token=token, clients=c, batch=1, shape="ohlcv")
        ws1_peer = load("ws", peer_port, s, clients=c, batch=1, shape="seed")
        print(f"saturation, one event a message, {args.many} clients", file=sys.stderr)
        wsm_adr = load("ws", adr_port, s, token=token, clients=args.many, batch=1, shape="ohlcv")
        wsm_peer = load("ws", peer_port, s, clients=args.many, batch=1, shape="seed")
        print("1,000 clients, one event a message", file=sys.stderr)
        ws_thousand = load("ws", adr_port, s, token=token, clients=1000, batch=1, shape="ohlcv")
        print(f"saturation, {b} events a message", file=sys.stderr)
        ws_adr = load("ws", adr_port, s, token=token, clients=c, batch=b, shape="ohlcv")
        ws_peer = load("ws", peer_port, s, clients=c, batch=b, shape="seed")
        pr_adr = load("predict", adr_port, s, token=token, clients=args.predict_clients, model=model)
        pr_peer = load("predict", peer_port, s, clients=args.predict_clients, shape="seed")
        print("adr at the peer's saturation rate", file=sys.stderr)
        ws_adr_at_peer = load("ws", adr_port, s, token=token, clients=c, batch=b, shape="ohlcv", rate=ws_peer["events_per_s"])
        pr_adr_at_peer = load("predict", adr_port, s, token=token, clients=args.predict_clients, model=model, rate=pr_peer["events_per_s"])
        print("the generator's own ceiling: a server that answers at once (serve_load echo)", file=sys.stderr)
        echo_port = free_port()
        echo = subprocess.Popen(
            [str(RELEASE / "serve_load"), "echo", "--url", f"http://127.0.0.1:{echo_port}", "--seconds", str(2 * s + 10)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            wait_for(echo_port)
            ceiling1 = load("ws", echo_port, s, clients=c, batch=1, shape="ohlcv")
            ceilingm = load("ws", echo_port, s, clients=args.many, batch=1, shape="ohlcv")
        finally:
            echo.kill()
            echo.wait()
        print("adr at 100 k events/s", file=sys.stderr)
        # Frames of 100: a frame's events wait for the whole frame's answer.
        ws_adr_half = load("ws", adr_port, s, token=token, clients=c, batch=100, shape="ohlcv", rate=100_000)
    finally:
        for p in (adr, peer):
            p.terminate()
        for p in (adr, peer):
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(data, ignore_errors=True)

    result = {
        "machine": {"cpus": os.cpu_count(), "load_before": load_before, "load_after": os.getloadavg()},
        "websocket_one_event_a_message": {
            "adr": ws1_adr, "peer": ws1_peer,
            "ratio": ws1_adr["events_per_s"] / ws1_peer["events_per_s"],
        },
        "websocket_one_event_a_message_many_clients": {
            "clients": args.many, "adr": wsm_adr, "peer": wsm_peer,
            "ratio": wsm_adr["events_per_s"] / wsm_peer["events_per_s"],
        },
        "adr_websocket_1000_clients": ws_thousand,
        "generator_ceiling_one_event_a_message": {"clients": c, **ceiling1},
        "generator_ceiling_one_event_a_message_many_clients": {"clients": args.many, **ceilingm},
        "websocket": {
            "adr": ws_adr, "peer": ws_peer,
            "ratio": ws_adr["events_per_s"] / ws_peer["events_per_s"],
            "adr_at_peer_rate": ws_adr_at_peer,
        },
        "predict": {
            "adr": pr_adr, "peer": pr_peer,
            "ratio": pr_adr["events_per_s"] / pr_peer["events_per_s"],
            "adr_at_peer_rate": pr_adr_at_peer,
        },
        "adr_websocket_at_100k": ws_adr_half,
    }
    print(f"websocket, one event a message: adr {ws1_adr['events_per_s']:,.0f}/s, peer {ws1_peer['events_per_s']:,.0f}/s, "
          f"ratio {result['websocket_one_event_a_message']['ratio']:.1f}x (bar 20x)")
    print(f"websocket, one event a message, {args.many} clients: adr {wsm_adr['events_per_s']:,.0f}/s, "
          f"peer {wsm_peer['events_per_s']:,.0f}/s, ratio {result['websocket_one_event_a_message_many_clients']['ratio']:.1f}x (bar 20x)")
    print(f"the generator against a server that answers at once, one event a message: {ceiling1['events_per_s']:,.0f}/s "
          f"({c} clients), {ceilingm['events_per_s']:,.0f}/s ({args.many}): 20x the peer would be "
          f"{20 * ws1_peer['events_per_s']:,.0f}/s and {20 * wsm_peer['events_per_s']:,.0f}/s")
    print(f"adr websocket, 1,000 clients, one event a message: {ws_thousand['events_per_s']:,.0f}/s, "
          f"p99 {ws_thousand['latency_ms']['p99']:.2f} ms, errors {ws_thousand['errors']}")
    print(f"websocket, {b} a message: adr {ws_adr['events_per_s']:,.0f}/s, peer {ws_peer['events_per_s']:,.0f}/s, "
          f"ratio {result['websocket']['ratio']:.1f}x (bar 20x); p99 at the peer's rate: adr "
          f"{ws_adr_at_peer['latency_ms']['p99']:.2f} ms, peer {ws_peer['latency_ms']['p99']:.2f} ms")
    print(f"predict:   adr {pr_adr['events_per_s']:,.0f}/s, peer {pr_peer['events_per_s']:,.0f}/s, "
          f"ratio {result['predict']['ratio']:.1f}x (bar 10x); p99 at the peer's rate: adr "
          f"{pr_adr_at_peer['latency_ms']['p99']:.2f} ms, peer {pr_peer['latency_ms']['p99']:.2f} ms")
    print(f"adr websocket paced to 100 k/s: {ws_adr_half['events_per_s']:,.0f}/s, p99 "
          f"{ws_adr_half['latency_ms']['p99']:.2f} ms (bars: 200 k/s saturated, p99 <= 5 ms at 100 k/s)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

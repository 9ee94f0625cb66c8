"""The seed's service design, as the peer `adr serve` is measured against.

A FastAPI app under uvicorn, as the seed had it: `POST /api/v1/detectors/predict` takes one
event `{"symbol", "price", "volume", "timestamp"}` and answers its verdict and score;
`/ws/anomalies` takes the same events (one object, or an array) and answers each one's
result. The detector is a rolling z-score of the price per symbol over the last 60 events,
kept in memory: the least work a real detector does, so the peer is measured at its best.

    python seed_service.py --port 8001 --workers 2

Pinned in serve-requirements.txt; `compare_serve.py` runs it beside `adr serve`.
"""

import argparse
import math
from collections import deque

from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from pydantic import BaseModel

WINDOW = 60
THRESHOLD = 4.0

app = FastAPI(title="seed peer")
windows: dict[str, deque] = {}


class Event(BaseModel):
    symbol: str
    price: float
    volume: float = 0.0
    timestamp: float | str | None = None


def score(symbol: str, price: float) -> dict:
    window = windows.setdefault(symbol, deque(maxlen=WINDOW))
    if len(window) >= 2:
        n = len(window)
        mean = sum(window) / n
        var = sum((x - mean) ** 2 for x in window) / (n - 1)
        std = math.sqrt(var)
        z = (price - mean) / std if std > 0 else 0.0
    else:
        z = 0.0
    window.append(price)
    return {"symbol": symbol, "score": abs(z), "is_anomaly": abs(z) > THRESHOLD}


@app.post("/api/v1/detectors/predict")
def predict(event: Event) -> dict:
    return score(event.symbol, event.price)


@app.websocket("/ws/anomalies")
async def anomalies(socket: WebSocket) -> None:
    await socket.accept()
    try:
        while True:
            message = await socket.receive_json()
            events = message if isinstance(message, list) else [message]
            results = [score(str(e["symbol"]), float(e["price"])) for e in events]
            await socket.send_json({"results": results})
    except WebSocketDisconnect:
        return


if __name__ == "__main__":
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    uvicorn.run(
        "seed_service:app",
        host="127.0.0.1",
        port=args.port,
        workers=args.workers,
        log_level="warning",
        access_log=False,
    )

"""numcnn serve under load on loopback: 200 requests from 16 concurrent clients, all answered,
each with the answer its own picture gets when asked alone.

Run as a script, it measures latency for the README instead (no assertion on time in pytest):

    python tests/test_serve_load.py runs/demo [requests] [clients]
"""

from __future__ import annotations

import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

pytest.importorskip("starlette", reason="numcnn serve needs the serve extra: pip install 'numcnn[serve]'")

from test_serve import LiveServer, drawing, post, tiny_model_file  # noqa: E402

REQUESTS, CLIENTS = 200, 16


def hammer(url: str, route: str, bodies: list[bytes], clients: int):
    """POST every body from `clients` threads at once; returns [(status, answer, seconds)] in order."""
    def one(body):
        start = time.perf_counter()
        status, answer = post(url, route, body)
        return status, answer, time.perf_counter() - start

    with ThreadPoolExecutor(clients) as pool:
        return list(pool.map(one, bodies))


def test_200_requests_from_16_clients_are_all_answered_correctly(tmp_path):
    server = LiveServer(tiny_model_file(tmp_path))
    try:
        bodies = [drawing(seed) for seed in range(REQUESTS)]
        expected = [server.explainer.predict(server.explainer.read(body)[0]) for body in bodies]
        results = hammer(server.url, "/api/predict", bodies, CLIENTS)
    finally:
        server.close()
    assert [status for status, _, _ in results] == [200] * REQUESTS
    for (_, answer, _), alone in zip(results, expected):
        assert [p["index"] for p in answer["predictions"]] == [p["index"] for p in alone]
        assert np.allclose([p["probability"] for p in answer["predictions"]],
                           [p["probability"] for p in alone], atol=1e-6)


def measure(model, requests: int = REQUESTS, clients: int = CLIENTS):
    """Print p50/p95 latency and throughput of /api/predict and /api/explain against
    `numcnn serve model` running in its own process (so the clients do not share its GIL)."""
    import os
    import subprocess

    from numcnn.model import read_model

    server = subprocess.Popen([sys.executable, "-m", "numcnn", "serve", str(model), "--port", "0"],
                              stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        url = server.stdout.readline().rsplit(" at ", 1)[1].strip()
        side = max(read_model(model)[0].input_shape[1:])
        bodies = [drawing(seed, size=side) for seed in range(requests)]
        for route in ("/api/predict", "/api/explain"):
            hammer(url, route, bodies[:clients], clients)  # warm up
            start = time.perf_counter()
            results = hammer(url, route, bodies, clients)
            wall = time.perf_counter() - start
            ms = np.array([seconds for _, _, seconds in results]) * 1000
            ok = sum(status == 200 for status, _, _ in results)
            print(f"{route}: {ok}/{requests} answered, {clients} clients, p50 {np.percentile(ms, 50):.0f} ms, "
                  f"p95 {np.percentile(ms, 95):.0f} ms, {requests / wall:.0f} requests/s")
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    measure(sys.argv[1], *(int(a) for a in sys.argv[2:4]))

"""Slow-client benchmark: does the web keep answering while scanners and broken clients linger?

Opens, against gunicorn on loopback, `--slow` connections that trickle their request headers a
byte every 2 s (slowloris), `--idle` connections that send nothing, and `--slow-bodies` that
send headers and then trickle the body; meanwhile a legitimate client sends health checks and
small Camio POSTs one after another. Prints their p50/p99 latency and failures, and how many
slow connections the server dropped or answered (and after how long), so the figures can be
compared with and without the attackers in the same run.

    .venv/bin/python bench/slowclients.py [--slow 200] [--idle 100] [--slow-bodies 20]
                                          [--seconds 20]
"""

from __future__ import annotations

import argparse
import json
import socket
import threading
import time

import requests

from bench.stack import API_KEY, Stack, percentile
from tests.factories import event


class Attackers:
    """Connections that hold on as long as the server lets them; each records when it was cut."""

    def __init__(self, port: int) -> None:
        self.port, self.stop = port, threading.Event()
        self.lifetimes: list[float] = []  # seconds until the server closed it
        self.lock = threading.Lock()

    def open(self, kind: str, count: int) -> None:
        for _ in range(count):
            threading.Thread(target=self._hold, args=(kind,), daemon=True).start()

    def _hold(self, kind: str) -> None:
        started = time.monotonic()
        try:
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        except OSError:
            return
        sock.settimeout(0.5)
        request = b"POST /tasks/" + API_KEY.encode() + b" HTTP/1.1\r\nHost: x\r\n"
        if kind == "body":  # whole headers at once, then the body a byte at a time
            trickle = b" " * 100000
            request += b"Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
        else:  # slow: the headers never end; idle: nothing at all
            trickle, request = (request + b"X-Pad: " + b"a" * 100000, b"")
            trickle = b"" if kind == "idle" else trickle
        try:
            sock.sendall(request)
            for index in range(10**9):
                if self.stop.is_set():
                    return
                if index < len(trickle):
                    sock.sendall(trickle[index : index + 1])
                if _closed(sock, 2.0):
                    break
        except OSError:
            pass
        finally:
            sock.close()
        with self.lock:
            self.lifetimes.append(time.monotonic() - started)


def _closed(sock: socket.socket, wait: float) -> bool:
    """Wait up to `wait` seconds; True if the server answered (a 408) or hung up meanwhile."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            sock.recv(4096)
        except TimeoutError:
            continue
        except OSError:
            return True
        return True  # an answer (408, 400) or the end of the connection: dropped either way
    return False


def legitimate(base: str, seconds: float) -> dict[str, list[float] | int]:
    """Health checks and small POSTs in turn for `seconds`; latencies in ms, and failures."""
    health: list[float] = []
    posts: list[float] = []
    failures, n = 0, 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        n += 1
        started = time.perf_counter()
        try:
            if n % 2:
                ok = requests.get(f"{base}/tasks/", timeout=10).status_code == 200
                health.append((time.perf_counter() - started) * 1000)
            else:
                body = json.dumps(event(1, seed=n, callback_url="http://127.0.0.1:9/cb"))
                ok = requests.post(
                    f"{base}/tasks/{API_KEY}",
                    data=body,
                    timeout=10,
                    headers={"Content-Type": "application/json"},
                ).ok
                posts.append((time.perf_counter() - started) * 1000)
        except requests.RequestException:
            ok = False
        failures += not ok
        time.sleep(0.05)
    return {"health": health, "posts": posts, "failures": failures}


def show(name: str, result: dict) -> None:
    for what in ("health", "posts"):
        values = result[what]
        if values:
            print(
                f"  {name}: {what} p50 {percentile(values, 0.5):.0f} ms, "
                f"p99 {percentile(values, 0.99):.0f} ms over {len(values)}"
            )
    print(f"  {name}: failures (timeouts or errors) {result['failures']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slow", type=int, default=200)
    parser.add_argument("--idle", type=int, default=100)
    parser.add_argument("--slow-bodies", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    with Stack() as stack:
        print(f"gunicorn {' '.join(stack.argv[3:])}")
        show("quiet", legitimate(stack.base, args.seconds / 4))
        attackers = Attackers(stack.port)
        attackers.open("slow", args.slow)
        attackers.open("idle", args.idle)
        attackers.open("body", args.slow_bodies)
        time.sleep(2)
        show(
            f"{args.slow} slow + {args.idle} idle + {args.slow_bodies} slow bodies",
            legitimate(stack.base, args.seconds),
        )
        attackers.stop.set()
        cut = sorted(attackers.lifetimes)
        total = args.slow + args.idle + args.slow_bodies
        if cut:
            print(
                f"  the server closed {len(cut)} of {total} attacking connections, "
                f"after {percentile(cut, 0.5):.1f} s (p50), {cut[-1]:.1f} s at most"
            )
        else:
            print(f"  the server closed none of the {total} attacking connections")


if __name__ == "__main__":
    main()

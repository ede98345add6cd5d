"""Headless Chromium driven over the DevTools protocol through a pipe (--remote-debugging-pipe:
JSON messages ending in a NUL byte on fds 3 and 4), for what its command line cannot say: the
layout's widths, console errors and CSP violations, screenshots at a given size. No selenium,
no chromedriver, no websocket library: the standard library only."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import select
import subprocess
import time
from pathlib import Path
from typing import Any

# every CSP violation the page meets, recorded before any of its own scripts run
WATCH_CSP = (
    "window.__csp = [];"
    "document.addEventListener('securitypolicyviolation',"
    " (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));"
)


class Browser:
    """One headless Chromium, one tab; `errors` gathers console errors and exceptions."""

    def __init__(self, chromium: str, profile: Path) -> None:
        to_chrome, self._write = os.pipe()
        self._read, from_chrome = os.pipe()

        def fds() -> None:  # the child's fds 3 and 4, as --remote-debugging-pipe wants them
            os.dup2(to_chrome, 3)
            os.dup2(from_chrome, 4)

        argv = [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--no-first-run",
            "--hide-scrollbars",
            "--remote-debugging-pipe",
            f"--user-data-dir={profile}",
            "about:blank",
        ]
        self.process = subprocess.Popen(
            argv,
            preexec_fn=fds,  # noqa: PLW1509 - only dup2 before exec
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            close_fds=False,
        )
        os.close(to_chrome)
        os.close(from_chrome)
        self._buffer = b""
        self._next = 0
        self.errors: list[str] = []
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.send("Target.attachToTarget", targetId=target, flatten=True)[
            "sessionId"
        ]
        for domain in ("Page", "Runtime", "Log"):
            self.call(f"{domain}.enable")
        self.call("Page.addScriptToEvaluateOnNewDocument", source=WATCH_CSP)

    def send(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        """A command and its result (events met meanwhile are noted)."""
        self._next += 1
        message: dict[str, Any] = {"id": self._next, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._write, json.dumps(message).encode() + b"\0")
        while True:
            answer = self._message(30)
            if answer.get("id") == self._next:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                return answer.get("result", {})
            self._note(answer)

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """A command to the tab."""
        return self.send(method, self.session, **params)

    def evaluate(self, expression: str) -> Any:
        found = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return found.get("result", {}).get("value")

    def open(self, url: str, size: tuple[int, int], *, mobile: bool, ready: str) -> None:
        """Load `url` in a window of `size` and wait until the script `ready` is true."""
        width, height = size
        self.call(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=mobile,
        )
        self.call("Page.navigate", url=url)
        deadline = time.monotonic() + 30
        while not self.evaluate(f"document.readyState === 'complete' && ({ready})"):
            assert time.monotonic() < deadline, f"{url}: not ready ({ready}) in 30 s"
            self.wait(0.2)

    def wait(self, seconds: float) -> None:
        """Note the events that come in `seconds`."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            message = self._message(left, missing_ok=True)
            if message:
                self._note(message)

    def screenshot(self, path: Path) -> Path:
        data = self.call("Page.captureScreenshot", format="png")["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        with contextlib.suppress(OSError, RuntimeError, AssertionError):
            self.send("Browser.close")
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._write)
        os.close(self._read)

    def _note(self, message: dict[str, Any]) -> None:
        method, params = message.get("method"), message.get("params") or {}
        if method == "Runtime.consoleAPICalled" and params.get("type") == "error":
            self.errors.append(
                "console: " + " ".join(str(a.get("value")) for a in params.get("args", []))
            )
        elif method == "Runtime.exceptionThrown":
            self.errors.append("exception: " + json.dumps(params.get("exceptionDetails"))[:500])
        elif method == "Log.entryAdded":
            entry = params.get("entry") or {}
            if entry.get("level") == "error" and not str(entry.get("url", "")).endswith(
                "/favicon.ico"
            ):
                self.errors.append(f"log ({entry.get('source')}): {entry.get('text')}")

    def _message(self, timeout: float, *, missing_ok: bool = False) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self._read], [], [], max(0.0, left))
            if not ready:
                if missing_ok:
                    return {}
                raise AssertionError(f"Chromium said nothing in {timeout:.0f} s")
            chunk = os.read(self._read, 1 << 20)
            assert chunk, "Chromium closed its pipe"
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

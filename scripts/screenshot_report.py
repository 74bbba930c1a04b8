#!/usr/bin/env python3
"""Open a report.html in headless Chromium, screenshot it, and fail on console errors or requests.

    python scripts/screenshot_report.py model-gates-report/report.html --out shots/ --width 390 --width 1280

Chromium is driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``), so only the
browser is needed: no websocket library, no Node. For each width it writes ``report-<width>.png``
(the whole page) and prints every console message of level error or warning, every uncaught
exception, every log entry (CSP violations, failed loads) and every request for anything other
than the file itself. Exit status: 0 clean, 1 problems found, 3 Chromium missing or broken.

Install Chromium on Debian/Ubuntu: ``apt-get update && apt-get install -y chromium``; point
elsewhere with ``--chromium PATH`` or ``$CHROMIUM``.
"""
from __future__ import annotations

import argparse
import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio", "--remote-debugging-pipe")
CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
PHONE_MAX_WIDTH = 600
TIMEOUT_S = 60.0


def find_chromium(explicit: str | None = None) -> str | None:
    """Return the Chromium executable: ``explicit``, ``$CHROMIUM``, else the first one on PATH."""
    for name in ([explicit] if explicit else []) + [os.environ.get("CHROMIUM", "")] + list(CANDIDATES):
        if name and (path := shutil.which(name)):
            return path
    return None


@dataclass
class PageReport:
    """What one page load produced: problems found and the screenshot written."""

    width: int
    screenshot: Path
    height: int = 0
    problems: list[str] = field(default_factory=list)


class DevTools:
    """A minimal DevTools-protocol client over Chromium's debugging pipe (fd 3 in, fd 4 out)."""

    def __init__(self, executable: str, profile: Path) -> None:
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()

        def wire_fds() -> None:  # runs in the child, before exec: fd 3 = commands, fd 4 = replies
            high_r = fcntl.fcntl(to_child_r, fcntl.F_DUPFD, 10)  # out of the way: a pipe may be fd 3 or 4
            high_w = fcntl.fcntl(from_child_w, fcntl.F_DUPFD, 10)
            os.dup2(high_r, 3)
            os.dup2(high_w, 4)
            os.set_inheritable(3, True)
            os.set_inheritable(4, True)

        self.proc = subprocess.Popen([executable, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     preexec_fn=wire_fds, close_fds=False)  # noqa: PLW1509 -- no threads here
        os.close(to_child_r)
        os.close(from_child_w)
        self._next_id = 0
        self._buffer = b""
        self.events: list[dict[str, Any]] = []

    def send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None) -> dict[str, Any]:
        """Send one command and return its result; events seen meanwhile are kept in ``events``."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_child, json.dumps(message).encode() + b"\0")
        while True:
            reply = self.read()
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                result: dict[str, Any] = reply.get("result", {})
                return result
            self.events.append(reply)

    def read(self) -> dict[str, Any]:
        deadline = time.monotonic() + TIMEOUT_S
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self._from_child], [], [], max(left, 0))
            if not ready:
                raise TimeoutError(f"Chromium did not answer within {TIMEOUT_S:.0f} s")
            chunk = os.read(self._from_child, 1 << 16)
            if not chunk:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                raise RuntimeError("Chromium exited: " + err.strip()[-2000:])
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        message: dict[str, Any] = json.loads(raw)
        return message

    def close(self) -> None:
        try:
            self.send("Browser.close")
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self._to_child, self._from_child):
            os.close(fd)


def shoot(html: Path, out: Path, widths: Sequence[int], executable: str) -> list[PageReport]:
    """Load ``html`` once per width, screenshot the whole page, and collect problems."""
    out.mkdir(parents=True, exist_ok=True)
    url = html.resolve().as_uri()
    reports = []
    with tempfile.TemporaryDirectory(prefix="mg-chromium-") as profile:
        tools = DevTools(executable, Path(profile))
        try:
            for width in widths:
                reports.append(_load(tools, url, width, out / f"{html.stem}-{width}.png"))
        finally:
            tools.close()
    return reports


def _load(tools: DevTools, url: str, width: int, png: Path) -> PageReport:
    target = tools.send("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = tools.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    for domain in ("Page", "Runtime", "Log", "Network"):
        tools.send(f"{domain}.enable", session=session)
    mobile = width <= PHONE_MAX_WIDTH
    tools.send("Emulation.setDeviceMetricsOverride",
               {"width": width, "height": 800, "deviceScaleFactor": 2 if mobile else 1, "mobile": mobile},
               session=session)
    start = len(tools.events)
    tools.send("Page.navigate", {"url": url}, session=session)
    _wait_load(tools, session, start)
    size = tools.send("Page.getLayoutMetrics", session=session)["cssContentSize"]
    height = int(size["height"]) + 1
    shot = tools.send("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1}}, session=session)
    png.write_bytes(base64.b64decode(shot["data"]))
    report = PageReport(width, png, height, _problems(tools.events[start:], session, url))
    overflow = tools.send("Runtime.evaluate", {"expression": "document.documentElement.scrollWidth",
                                               "returnByValue": True}, session=session)["result"].get("value")
    if isinstance(overflow, int) and overflow > width:
        report.problems.append(f"page is {overflow}px wide at a {width}px viewport (horizontal scrolling)")
    tools.send("Target.closeTarget", {"targetId": target})
    return report


def _wait_load(tools: DevTools, session: str, start: int) -> None:
    """Return once this page fired its load event (it may already be among the events seen)."""
    seen = start
    while True:
        for ev in tools.events[seen:]:
            if ev.get("method") == "Page.loadEventFired" and ev.get("sessionId") == session:
                return
        seen = len(tools.events)
        tools.events.append(tools.read())


def _problems(events: Sequence[dict[str, Any]], session: str, url: str) -> list[str]:
    """Return console errors/warnings, exceptions, log entries and requests for other resources."""
    out = []
    for ev in events:
        if ev.get("sessionId") != session:
            continue
        method, params = ev.get("method"), ev.get("params") or {}
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "warning", "assert"):
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
            out.append(f"console.{params['type']}: {text}")
        elif method == "Runtime.exceptionThrown":
            out.append("exception: " + params.get("exceptionDetails", {}).get("text", ""))
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") in ("error", "warning"):
            entry = params["entry"]
            out.append(f"log {entry['level']} ({entry.get('source')}): {entry.get('text')} {entry.get('url', '')}".strip())
        elif method == "Network.requestWillBeSent":
            requested = params.get("request", {}).get("url", "")
            if requested != url and not requested.startswith(("data:", "about:")):
                out.append(f"request: {requested}")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("html", type=Path, help="the report.html to open")
    parser.add_argument("--out", type=Path, default=Path("screenshots"), help="folder for the PNGs")
    parser.add_argument("--width", type=int, action="append", help="viewport width in CSS px (repeatable)")
    parser.add_argument("--chromium", help="Chromium executable (default: $CHROMIUM or chromium on PATH)")
    args = parser.parse_args(argv)
    executable = find_chromium(args.chromium)
    if executable is None:
        print("chromium not found: apt-get update && apt-get install -y chromium", file=sys.stderr)
        return 3
    try:
        reports = shoot(args.html, args.out, args.width or [390, 1280], executable)
    except (RuntimeError, TimeoutError, OSError) as exc:
        print(f"chromium failed: {exc}", file=sys.stderr)
        return 3
    for r in reports:
        print(f"{r.screenshot} ({r.width}x{r.height}): {len(r.problems)} problem(s)")
        for p in r.problems:
            print(f"  {p}")
    return 1 if any(r.problems for r in reports) else 0


if __name__ == "__main__":
    sys.exit(main())

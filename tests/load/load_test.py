"""Load test: concurrent users upload a book and edit it, against gunicorn on loopback.

    python tests/load/load_test.py                       # 50 users, 200-position books, ≤ 120 s
    python tests/load/load_test.py --users 10 --duration 30 --url http://127.0.0.1:8050

Without ``--url`` it starts ``gunicorn dashboard.app:server`` with the Procfile's options on a
free loopback port and stops it at the end.  Each simulated user is a small Dash renderer: it
reads ``/_dash-layout`` and ``/_dash-dependencies``, keeps every component's props, and replays
what the browser sends to ``/_dash-update-component`` — the initial callbacks of the page, then,
when a prop changes (an upload's ``contents``, a grid's ``cellValueChanged``, a store written by
a callback), every server callback that has it as an Input, wave after wave, up to six requests
at a time as a browser does.  Clientside callbacks are not run (they never reach the server),
nor are pattern-matching ones.

Scenario per user: open the Book page, think 1–2 s, upload a 200-position CSV (a different
random book per user), then edit a quantity in the grid every 1–2 s until the time is up.
Reported: callback latency p50/p95/max (all callbacks, and per callback), 5xx and failed
requests, and the RSS of the gunicorn processes (sampled every 0.5 s).  Loopback only; the
run is bounded by ``--duration`` and each request by a 60 s timeout.
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlparse

import requests

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from dashboard import ids  # noqa: E402
from engine.portfolio import write_positions  # noqa: E402
from engine.samples import demo_market, random_book  # noqa: E402

REQUEST_TIMEOUT = 60.0
PARALLEL_REQUESTS = 6  # a browser's connections per host


class Recorder:
    """Latency and status of every callback request, thread-safe."""

    def __init__(self):
        self.lock = threading.Lock()
        self.samples: list[tuple[str, float, int]] = []  # (callback, seconds, status; 0 = no response)
        self.failures: dict[str, int] = defaultdict(int)  # exception name -> count
        self.retries = 0

    def add(self, name: str, seconds: float, status: int, failure: str | None = None):
        with self.lock:
            self.samples.append((name, seconds, status))
            if failure:
                self.failures[failure] += 1


def _parse_output(output: str) -> list[tuple[str, str]]:
    """``"..a.b...c.d.."`` or ``"a.b"`` → [(id, prop)]; a duplicate output keeps its ``@hash``."""
    parts = output[2:-2].split("...") if output.startswith("..") else [output]
    return [tuple(p.rsplit(".", 1)) for p in parts]  # type: ignore[misc]


class Callback:
    def __init__(self, spec: dict):
        self.output = spec["output"]
        self.outputs = _parse_output(self.output)
        self.inputs = [(i["id"], i["property"]) for i in spec["inputs"]]
        self.state = [(s["id"], s["property"]) for s in spec.get("state", [])]
        self.prevent_initial = bool(spec.get("prevent_initial_call"))
        self.server = not spec.get("clientside_function")
        wildcard = any(i.startswith("{") for i, _ in self.inputs + self.state + self.outputs)
        self.usable = self.server and not wildcard
        self.name = ",".join(f"{i}.{p.split('@')[0]}" for i, p in self.outputs)


class User:
    """One browser tab: component props, and the callbacks that fire when they change."""

    def __init__(self, base: str, recorder: Recorder, seed: int):
        self.base = base.rstrip("/")
        self.http = requests.Session()
        self.recorder = recorder
        self.rng = random.Random(seed)
        self.seed = seed
        self.props: dict[str, dict] = {}
        self.types: dict[str, str] = {}
        self.lock = threading.Lock()
        self.callbacks: list[Callback] = []

    # ----------------------------------------------------------------------- layout
    def _walk(self, node, found: set):
        if isinstance(node, list):
            for child in node:
                self._walk(child, found)
        elif isinstance(node, dict) and "props" in node and "type" in node:
            props = node["props"]
            cid = props.get("id")
            if isinstance(cid, str):
                self.props.setdefault(cid, {}).update({k: v for k, v in props.items() if k != "children"})
                self.types[cid] = node["type"]
                found.add(cid)
            for value in props.values():
                self._walk(value, found)

    def open(self, path: str = "/"):
        self.http.get(self.base + path, timeout=REQUEST_TIMEOUT).raise_for_status()
        layout = self.http.get(self.base + "/_dash-layout", timeout=REQUEST_TIMEOUT).json()
        deps = self.http.get(self.base + "/_dash-dependencies", timeout=REQUEST_TIMEOUT).json()
        self.callbacks = [cb for cb in map(Callback, deps) if cb.usable]
        found: set = set()
        self._walk(layout, found)
        self.settle(self._initial(found), set())
        for cid in [c for c, kind in self.types.items() if kind == "Location"]:
            # dcc.Location reports the browser's address on load: that renders the page.
            self.set_props(cid, pathname=path, search="", hash="", href=self.base + path)

    def _present(self, cb: Callback) -> bool:
        return all(cid in self.props for cid, _ in cb.inputs + cb.outputs)

    def _initial(self, new_ids: set) -> list[Callback]:
        return [cb for cb in self.callbacks if not cb.prevent_initial and self._present(cb)
                and any(cid in new_ids for cid, _ in cb.inputs + cb.outputs)]

    # ----------------------------------------------------------------------- callbacks
    def _value(self, cid: str, prop: str):
        return self.props.get(cid, {}).get(prop)

    def fire(self, cb: Callback, changed: set) -> tuple[set, set]:
        """POST one callback; apply its response; return (changed (id, prop), new component ids)."""
        with self.lock:
            body = {
                "output": cb.output,
                "outputs": ([{"id": i, "property": p} for i, p in cb.outputs] if cb.output.startswith("..")
                            else {"id": cb.outputs[0][0], "property": cb.outputs[0][1]}),
                "inputs": [{"id": i, "property": p, "value": self._value(i, p)} for i, p in cb.inputs],
                "state": [{"id": i, "property": p, "value": self._value(i, p)} for i, p in cb.state],
                "changedPropIds": [f"{i}.{p}" for i, p in cb.inputs if (i, p) in changed],
            }
        start = time.perf_counter()
        try:
            try:
                response = self.http.post(self.base + "/_dash-update-component", json=body, timeout=REQUEST_TIMEOUT)
            except requests.ConnectionError:
                # A kept-alive connection the server closed meanwhile: a browser retries it once, too.
                self.recorder.retries += 1
                response = self.http.post(self.base + "/_dash-update-component", json=body, timeout=REQUEST_TIMEOUT)
            status = response.status_code
        except requests.RequestException as e:
            self.recorder.add(cb.name, time.perf_counter() - start, 0, type(e).__name__)
            return set(), set()
        self.recorder.add(cb.name, time.perf_counter() - start, status)
        if status != 200:  # 204: PreventUpdate
            return set(), set()
        updates, found = set(), set()
        with self.lock:
            for cid, props in response.json().get("response", {}).items():
                for prop, value in props.items():
                    prop = prop.split("@")[0]
                    self.props.setdefault(cid, {})[prop] = value
                    updates.add((cid, prop))
                    self._walk(value, found)
        return updates, found

    def settle(self, pending: list[Callback], changed: set):
        """Fire ``pending``, then whatever their outputs trigger, wave by wave, until quiet."""
        with ThreadPoolExecutor(PARALLEL_REQUESTS) as pool:
            for _ in range(20):  # a bound on chains of callbacks
                if not pending:
                    return
                results = list(pool.map(lambda cb, done=changed: self.fire(cb, done), pending))
                changed = set().union(*(r[0] for r in results))
                found = set().union(*(r[1] for r in results))
                # A callback is not triggered by its own outputs (e.g. the upload resetting its contents).
                by = {cb: r[0] for cb, r in zip(pending, results, strict=True)}
                pending = [cb for cb in self.callbacks if self._present(cb)
                           and any(i in upd for i in cb.inputs for other, upd in by.items() if other is not cb)]
                pending += [cb for cb in self._initial(found) if cb not in pending]

    def set_props(self, cid: str, **props):
        """What a user's action does: change props, then fire the callbacks they are Inputs of."""
        with self.lock:
            self.props.setdefault(cid, {}).update(props)
        changed = {(cid, p) for p in props}
        self.settle([cb for cb in self.callbacks if self._present(cb) and any(i in changed for i in cb.inputs)],
                    changed)

    # ----------------------------------------------------------------------- actions
    def upload(self, n_positions: int):
        book = random_book(n_positions, seed=self.seed, market=demo_market(), name=f"load{self.seed}")
        text = write_positions(book)
        contents = "data:text/csv;base64," + base64.b64encode(text.encode()).decode()
        self.props.setdefault(ids.UPLOAD, {})["filename"] = f"load{self.seed}.csv"
        self.set_props(ids.UPLOAD, contents=contents)

    def edit(self):
        rows = self._value(ids.BOOK_GRID, "rowData") or []
        if not rows:
            return
        k = self.rng.randrange(len(rows))
        row = rows[k]
        old = row.get("quantity") or 1.0
        new = round(old * self.rng.choice((0.5, 1.5, 2.0)), 4) or 1.0
        change = {"rowIndex": k, "rowId": row.get("id"), "data": dict(row, quantity=new), "oldValue": old,
                  "value": new, "colId": "quantity", "timestamp": int(time.time() * 1000)}
        self.set_props(ids.BOOK_GRID, cellValueChanged=[change])


def run_user(base, recorder, seed, deadline, n_positions, errors):
    user = User(base, recorder, seed)
    try:
        user.open("/")
        time.sleep(user.rng.uniform(1, 2))
        user.upload(n_positions)
        while time.monotonic() < deadline:
            time.sleep(user.rng.uniform(1, 2))
            user.edit()
    except Exception as e:  # noqa: BLE001 - one user's failure is reported, the others go on
        errors.append(f"user {seed}: {type(e).__name__}: {e}")


def _rss_mb(pids) -> float:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def start_gunicorn(port: int, log) -> subprocess.Popen:
    """The Procfile's command on loopback (its own process group, so it stops with its workers);
    its log (errors with their tracebacks) goes to the file ``log``."""
    cmd = [sys.executable, "-m", "gunicorn", "dashboard.app:server", "--workers", "2", "--threads", "4",
           "--timeout", "120", "--bind", f"127.0.0.1:{port}"]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True, stdout=log, stderr=subprocess.STDOUT)
    for _ in range(240):
        try:
            if requests.get(f"http://127.0.0.1:{port}/_dash-layout", timeout=5).ok:
                return proc
        except requests.RequestException:
            time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGTERM)
    raise RuntimeError("gunicorn did not start")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))] if values else float("nan")


def report(recorder: Recorder, rss: list[float], errors: list[str], wall: float, users: int) -> dict:
    samples = recorder.samples
    times = [s for _, s, _ in samples]
    by_cb = defaultdict(list)
    for name, seconds, _ in samples:
        by_cb[name].append(seconds)
    summary = {
        "users": users, "wall_s": round(wall, 1), "callbacks": len(samples),
        "p50_s": round(percentile(times, 50), 3), "p95_s": round(percentile(times, 95), 3),
        "max_s": round(max(times, default=float("nan")), 3),
        "http_5xx": sum(1 for *_, st in samples if st >= 500), "failed": sum(1 for *_, st in samples if st == 0),
        "failures": dict(recorder.failures), "retried": recorder.retries,
        "rss_start_mb": round(rss[0], 1) if rss else None, "rss_max_mb": round(max(rss), 1) if rss else None,
        "rss_end_mb": round(rss[-1], 1) if rss else None,
        # RSS at each tenth of the run: a bounded server levels off.
        "rss_timeline_mb": [round(rss[len(rss) * k // 10], 1) for k in range(10)] + [round(rss[-1], 1)] if rss else [],
        "user_errors": errors[:5],
        "per_callback": {name: {"n": len(v), "p50_s": round(statistics.median(v), 3),
                                "p95_s": round(percentile(v, 95), 3)}
                         for name, v in sorted(by_cb.items(), key=lambda kv: -len(kv[1]))},
    }
    return summary


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--users", type=int, default=50)
    ap.add_argument("--positions", type=int, default=200)
    ap.add_argument("--duration", type=float, default=120.0, help="seconds of edits after the uploads")
    ap.add_argument("--url", help="an already running server (loopback only); default: start gunicorn")
    ap.add_argument("--json", help="also write the summary to this file")
    args = ap.parse_args(argv)
    if args.url and urlparse(args.url).hostname not in ("127.0.0.1", "localhost", "::1"):
        ap.error("loopback only: --url must be http://127.0.0.1:PORT or localhost")
    with tempfile.NamedTemporaryFile("w+", prefix="pmdash-load-", suffix=".log", delete=False) as log:
        summary = run(args, log)
    print(json.dumps(summary, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2))
    return 0 if summary["http_5xx"] == 0 and summary["failed"] == 0 else 1


def run(args, log) -> dict:
    """The load test of ``args``; the server's log (when this starts it) goes to ``log``."""
    server = None if args.url else start_gunicorn(_free_port(), log)
    base = args.url or f"http://127.0.0.1:{server.args[-1].split(':')[-1]}"
    recorder, errors, rss = Recorder(), [], []
    stop = threading.Event()

    def sample_rss():
        while not stop.is_set() and server is not None:
            rss.append(_rss_mb([server.pid, *_children(server.pid)]))
            stop.wait(0.5)

    sampler = threading.Thread(target=sample_rss, daemon=True)
    sampler.start()
    start = time.monotonic()
    deadline = start + args.duration
    threads = [threading.Thread(target=run_user, args=(base, recorder, seed, deadline, args.positions, errors))
               for seed in range(args.users)]
    try:
        for t in threads:
            t.start()
            time.sleep(0.05)  # users arrive over a few seconds, not in one instant
        for t in threads:
            t.join(args.duration + 4 * REQUEST_TIMEOUT)
    finally:
        stop.set()
        if server is not None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(30)
    summary = report(recorder, rss, errors, time.monotonic() - start, args.users)
    if server is not None:
        log.seek(0)
        summary["server_log"] = log.name
        summary["server_errors"] = [line.rstrip() for line in log if "Error" in line or "Traceback" in line][:20]
    return summary


if __name__ == "__main__":
    sys.exit(main())

"""Prediction service benchmark: sustainable single-row rate and batch rows/s, against baselines.

    OMP_NUM_THREADS=1 python benchmarks/bench_service.py [--seconds 60] [--rows 20000]

Setup: a random-forest champion (v1) and an XGBoost challenger (v2) trained on ``--rows`` demo
rows, a 50% ``ab`` rollout between them, ``retrain serve`` as a subprocess (one uvicorn
worker; scoring on one thread), load from this process (asyncio; see ``Connections``).

1. Single rows, open loop: requests sent at a fixed rate for ``--seconds`` whatever the answers
   do; latency counts from each request's *scheduled* send time, so a server that falls behind
   cannot hide the queue. The rate steps up (``--rates``); the highest rate with p99 <= 50 ms
   and no errors is the sustainable rate. Baseline, same run: the same service with
   micro-batching off (``RETRAIN_SERVE_MAX_BATCH=1``).
2. Batch requests of ``--batch-rows`` columnar rows, one at a time: rows/s. Baselines: the same
   models scoring the same rows in-process, routed the same way, through the service's
   compiled scorers (ratio = HTTP, validation and logging overhead) and through
   ``TrainedModel.scores``.
3. After SIGTERM, the prediction log holds exactly one row per prediction answered (asserted).
4. ``--parts durable``: the durable service (every answer synced to the spool first) against
   the same service answering at once (``RETRAIN_SERVE_DURABLE=false``), same run: open-loop
   steps as in 1, and SIGKILL under load: ``--kill-after`` answered requests (a condition, not
   a time) into an open-loop load, ``kill -9``, restart, and every answered prediction id
   looked up in the log.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import os
import platform
import signal
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import httpx
import numpy as np
import pandas as pd

from retraining_assets.core.candidates import TrainingWindow, register_candidate
from retraining_assets.core.demo import SPEC, DemoStream
from retraining_assets.core.notify import LogChannel, Notifier
from retraining_assets.core.prediction_log import count_rows, entities_of
from retraining_assets.core.registry import CHAMPION, Actor, Registry
from retraining_assets.core.rollout import RolloutPlan, transitions
from retraining_assets.core.training import (
    TrainedModel,
    data_fingerprint,
    split_by_time,
    train_model,
)
from retraining_assets.service.process import serve_process
from retraining_assets.service.scoring import scorer_for
from retraining_assets.settings import load_settings

P99_TARGET_MS = 50.0
ACTOR = Actor(by="benchmark", actual_user="benchmark")
TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


# --- setup -------------------------------------------------------------------------------


@dataclass
class Setup:
    home: Path
    frame: pd.DataFrame
    champion: TrainedModel
    challenger: TrainedModel
    salt: str
    router: Any


def prepare(home: Path, rows: int) -> Setup:
    """Train both models, register them, start a 50% ab rollout."""
    months = max(2, math.ceil(rows / 5000))
    stream = DemoStream(months=months, rows_per_month=math.ceil(rows / months))
    frame = pd.concat([stream.generate(i) for i in range(months)], ignore_index=True)
    split = split_by_time(frame, SPEC)
    started = time.perf_counter()
    forest = train_model("random_forest", split, SPEC)
    boosted = train_model("xgboost", split, SPEC)
    print(f"trained on {len(frame):,} rows in {time.perf_counter() - started:.1f}s")
    settings = load_settings(home=home)
    registry = Registry.from_settings(settings)
    window = TrainingWindow(
        split,
        frame[SPEC.time_column].min().to_pydatetime(),
        datetime(2100, 1, 1),
        data_fingerprint(frame, SPEC),
    )
    for model in (forest, boosted):
        register_candidate(registry, "demo", model, window, SPEC, run_id=None, actor=ACTOR)
    registry.move_alias(
        "demo", CHAMPION, 1, expected_current=None, by="benchmark", actual_user="benchmark",
        reason="benchmark",
    )  # fmt: skip
    notifier = Notifier(registry.engine, [LogChannel()])
    plan = RolloutPlan.from_dict({"strategy": "ab", "share": 0.5})
    rollout = transitions.start_rollout(
        registry, notifier, "demo", 2, plan, actor=ACTOR, reason="benchmark"
    )
    return Setup(home, frame, forest, boosted, rollout.salt, rollout.router())


@dataclass
class Server:
    url: str
    pid: int

    def cpu_seconds(self) -> float:
        """User + system CPU of the server process so far (Linux; 0 elsewhere)."""
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / TICKS


@contextmanager
def retrain_serve(home: Path, max_batch: int, **settings: str) -> Iterator[Server]:
    """``retrain serve --port 0`` with ``RETRAIN_SERVE_MAX_BATCH=max_batch`` and more
    ``RETRAIN_<NAME>`` settings; SIGTERM at exit (nothing if it was killed)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RETRAIN_")}
    env |= {
        "RETRAIN_HOME": str(home),
        "RETRAIN_SERVE_MAX_BATCH": str(max_batch),
        "OMP_NUM_THREADS": "1",
    }
    env |= {f"RETRAIN_{name.upper()}": value for name, value in settings.items()}
    with serve_process(env) as served:
        yield Server(served.url, served.pid)
    if served.returncode == -signal.SIGKILL:
        print("  server killed (SIGKILL)")
        return
    closed = [line for line in served.output if "prediction log closed" in line]
    print(f"  server stopped: {closed[-1].strip() if closed else 'log not closed!'}")


# --- single rows, open loop ----------------------------------------------------------------


@dataclass
class Step:
    rate: int
    sent: int
    ok: int
    errors: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    lag_ms: float  # how late the client sent, p99 (a late client measures itself)
    server_cpu: float  # share of one core
    mean_batch: float | None

    @property
    def sustainable(self) -> bool:
        return self.errors == 0 and self.p99_ms <= P99_TARGET_MS


def row_bodies(frame: pd.DataFrame, n: int) -> list[bytes]:
    """The features of ``n`` demo rows as JSON (entity ids are spliced in per request)."""
    records = frame[list(SPEC.features)].iloc[:n]
    bodies = []
    for row in records.itertuples(index=False):
        features = {}
        for name, value in zip(SPEC.features, row, strict=True):
            if name in SPEC.numeric_features:
                features[name] = None if pd.isna(value) else float(value)
            else:
                features[name] = None if pd.isna(value) else str(value)
        bodies.append(json.dumps(features, separators=(",", ":")).encode())
    return bodies


class Connections:
    """Keep-alive HTTP/1.1 connections for the load, at most ``limit`` open.

    A minimal client on asyncio streams (uvloop when installed), used for the open-loop load
    only: httpx costs ~1.7 ms of client CPU per request on this machine and capped the load
    at ~600 requests/s on its core, so the generator, not the service, was measured. This one
    costs ~0.1 ms. httpx still makes every other call (health, batches).
    """

    def __init__(self, url: str, limit: int) -> None:
        host, port = url.removeprefix("http://").rsplit(":", 1)
        self.host, self.port, self.limit = host, int(port), limit
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.opened = 0
        self.waiting: deque[asyncio.Future[Any]] = deque()

    async def post(self, path: bytes, body: bytes) -> tuple[int, bytes]:
        """POST ``body``; the status code and the response body. A keep-alive
        connection the server closed while idle (uvicorn: after 5 s) is replaced, and the
        request sent again only if not one byte of an answer came (it was never processed)."""
        for attempt in (1, 2):
            reader, writer = connection = await self._take()
            writer.write(REQUEST % (path, self.host.encode(), len(body), body))
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError) as error:
                self._lost()
                writer.close()
                if attempt == 2 or getattr(error, "partial", b""):
                    raise
                continue
            at = head.lower().index(b"content-length:") + 15
            content = await reader.readexactly(int(head[at : head.index(b"\r\n", at)]))
            self._give(connection)
            return int(head[9:12]), content
        raise AssertionError("unreachable")

    async def _take(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        while self.idle:
            reader, writer = self.idle.pop()
            if not reader.at_eof() and not writer.is_closing():
                return reader, writer
            self.opened -= 1
            writer.close()
        if self.opened >= self.limit:
            waiter = asyncio.get_running_loop().create_future()
            self.waiting.append(waiter)
            connection = await waiter
            if connection is not None:
                return connection
        self.opened += 1  # a new connection (or one a lost connection left room for)
        try:
            return await asyncio.open_connection(self.host, self.port)
        except OSError:
            self._lost()
            raise

    def _lost(self) -> None:
        """A connection is gone (the server was killed): a waiting request may open one."""
        self.opened -= 1
        while self.waiting:
            waiter = self.waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _give(self, connection: tuple[asyncio.StreamReader, asyncio.StreamWriter]) -> None:
        while self.waiting:
            waiter = self.waiting.popleft()
            if not waiter.done():
                waiter.set_result(connection)
                return
        self.idle.append(connection)

    def close(self) -> None:
        for _, writer in self.idle:
            writer.close()


REQUEST = (
    b"POST %s HTTP/1.1\r\nhost: %s\r\ncontent-type: application/json\r\n"
    b"content-length: %d\r\n\r\n%s"
)


async def open_loop(
    url: str,
    rate: int,
    seconds: float,
    bodies: Sequence[bytes],
    prefix: str,
    concurrency: int,
    answered: Callable[[bytes], None] | None = None,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Send ``rate * seconds`` requests on schedule; latencies (s), send lags (s), errors.
    ``answered(prediction_id)`` is called for every 200."""
    n = int(rate * seconds)
    latencies = np.full(n, np.nan)
    lags = np.zeros(n)
    errors = 0
    kinds: dict[str, int] = {}
    connections = Connections(url, concurrency)
    loop = asyncio.get_running_loop()

    async def one(i: int, scheduled: float) -> None:
        nonlocal errors
        lags[i] = loop.time() - scheduled
        body = b'{"entity_id":"%s-%d","features":%s}' % (
            prefix.encode(),
            i,
            bodies[i % len(bodies)],
        )
        try:
            status, content = await connections.post(b"/predict", body)
            if status != 200:
                errors += 1
                kinds[f"HTTP {status}"] = kinds.get(f"HTTP {status}", 0) + 1
            elif answered is not None:  # {"prediction_id":"<32 hex digits>", ...
                answered(content[18:50])
        except (OSError, asyncio.IncompleteReadError, ValueError) as error:
            errors += 1
            kinds[type(error).__name__] = kinds.get(type(error).__name__, 0) + 1
        latencies[i] = loop.time() - scheduled

    tasks = []
    start = loop.time() + 0.05
    for i in range(n):
        scheduled = start + i / rate
        delay = scheduled - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, scheduled)))
    await asyncio.gather(*tasks)
    connections.close()
    if kinds:
        print(f"  errors at {rate}/s: {kinds}")
    return latencies, lags, errors


def run_loop(coroutine: Any) -> Any:
    """``asyncio.run`` on uvloop when it is installed (a cheaper load generator), with this
    process's objects (models, frames) frozen so a garbage collection cannot stall the load."""
    gc.collect()
    gc.freeze()
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


def run_steps(
    setup: Setup,
    max_batch: int,
    rates: Sequence[int],
    seconds: float,
    concurrency: int,
    **settings: str,
) -> tuple[list[Step], dict[str, int]]:
    """Step the rate up against one server until a step is not sustainable; log counts."""
    bodies = row_bodies(setup.frame, 5000)
    before = count_rows(Registry.from_settings(load_settings(home=setup.home)).engine, "demo")
    steps: list[Step] = []
    with retrain_serve(setup.home, max_batch, **settings) as server:
        # warm-up, not measured (connections, caches); its predictions are logged and counted
        warm = run_loop(open_loop(server.url, 100, 2.0, bodies, f"w{max_batch}", concurrency))
        sent, ok = len(warm[0]), len(warm[0]) - warm[2]
        for rate in rates:
            health = httpx.get(f"{server.url}/health").json()["batching"]
            cpu, wall = server.cpu_seconds(), time.perf_counter()
            prefix = f"b{max_batch}-r{rate}"
            latencies, lags, errors = run_loop(
                open_loop(server.url, rate, seconds, bodies, prefix, concurrency)
            )
            cpu_share = (server.cpu_seconds() - cpu) / (time.perf_counter() - wall)
            after = httpx.get(f"{server.url}/health").json()["batching"]
            batches = after["batches"] - health["batches"]
            items = after["rows"] - health["rows"]
            ms = latencies * 1000
            step = Step(
                rate=rate,
                sent=len(latencies),
                ok=len(latencies) - errors,
                errors=errors,
                p50_ms=float(np.nanpercentile(ms, 50)),
                p99_ms=float(np.nanpercentile(ms, 99)),
                max_ms=float(np.nanmax(ms)),
                lag_ms=float(np.percentile(lags * 1000, 99)),
                server_cpu=cpu_share,
                mean_batch=round(items / batches, 1) if batches else None,
            )
            steps.append(step)
            sent += step.sent
            ok += step.ok
            print(
                f"  max_batch={max_batch} rate={rate}/s: p50 {step.p50_ms:.1f} ms, "
                f"p99 {step.p99_ms:.1f} ms, errors {errors}, server CPU {cpu_share:.0%}, "
                f"mean batch {step.mean_batch}, client lag p99 {step.lag_ms:.1f} ms"
            )
            if not step.sustainable:
                break
    engine = Registry.from_settings(load_settings(home=setup.home)).engine
    logged = count_rows(engine, "demo")["predictions"] - before["predictions"]
    return steps, {"sent": sent, "ok": ok, "logged": logged}


def sustainable_rate(steps: Sequence[Step]) -> int:
    return max((step.rate for step in steps if step.sustainable), default=0)


# --- batches ------------------------------------------------------------------------------


def batch_body(frame: pd.DataFrame, rows: int, request: int) -> bytes:
    part = frame.iloc[:rows]
    features: dict[str, list[Any]] = {}
    for name in SPEC.numeric_features:
        values = part[name].astype(float)
        features[name] = [None if math.isnan(v) else v for v in values.tolist()]
    for name in SPEC.categorical_features:
        features[name] = [None if pd.isna(v) else str(v) for v in part[name].tolist()]
    ids = [f"batch-{request}-{i}" for i in range(rows)]
    return json.dumps({"entity_ids": ids, "features": features}, separators=(",", ":")).encode()


def http_batches(url: str, bodies: Sequence[bytes], rows: int) -> tuple[float, float]:
    """Rows/s of the batch requests sent one after another (after one warm-up request): until
    the last answer, and until the log has written every row (its writer runs behind)."""
    headers = {"content-type": "application/json"}
    with httpx.Client(base_url=url, timeout=300) as client:
        warm = client.post("/predict/batch", content=bodies[0], headers=headers)
        assert warm.status_code == 200, warm.text[:500]
        wait_for_log(client)
        started = time.perf_counter()
        for body in bodies[1:]:
            response = client.post("/predict/batch", content=body, headers=headers)
            assert response.status_code == 200, response.text[:500]
        answered = time.perf_counter() - started
        wait_for_log(client)
        logged = time.perf_counter() - started
    n = rows * (len(bodies) - 1)
    return n / answered, n / logged


def wait_for_log(client: httpx.Client) -> None:
    """Until the service's prediction log has no backlog (a measurement, polled every 10 ms)."""
    while client.get("/health").json()["log"]["backlog"]:
        time.sleep(0.01)


def in_process(setup: Setup, rows: int, repeat: int, compiled: bool) -> float:
    """Rows/s of the same models on the same rows, routed as the service routes them."""
    part = setup.frame.iloc[:rows]
    ids = [f"batch-0-{i}" for i in range(rows)]
    variants = setup.router.assign_many(ids)
    models = {"champion": setup.champion, "challenger": setup.challenger}
    parts = {v: np.flatnonzero(variants == v) for v in models}
    if compiled:
        scorers = {v: scorer_for(m, SPEC)[0] for v, m in models.items()}
        columns = {name: part[name].to_numpy(dtype=np.float64) for name in SPEC.numeric_features}
        for name in SPEC.categorical_features:
            columns[name] = part[name].astype(object).where(part[name].notna(), None).to_numpy()

        def score() -> None:
            for v, where in parts.items():
                scorers[v].scores({name: values[where] for name, values in columns.items()})
    else:

        def score() -> None:
            for v, where in parts.items():
                models[v].scores(part.iloc[where])

    score()
    best = math.inf
    for _ in range(repeat):
        started = time.perf_counter()
        score()
        best = min(best, time.perf_counter() - started)
    return rows / best


def single_row_costs(setup: Setup) -> list[tuple[str, str, float]]:
    """Milliseconds per call for one row and for 256 rows: ``TrainedModel.scores`` vs compiled."""
    out = []
    for model in (setup.champion, setup.challenger):
        scorer = scorer_for(model, SPEC)[0]
        for n in (1, 256):
            part = setup.frame.iloc[:n]
            columns = {c: part[c].to_numpy(dtype=np.float64) for c in SPEC.numeric_features}
            for c in SPEC.categorical_features:
                columns[c] = part[c].astype(object).to_numpy()
            for label, fn in (
                ("TrainedModel.scores", lambda p=part, m=model: m.scores(p)),
                ("compiled", lambda c=columns, s=scorer: s.scores(c)),
            ):
                fn()
                started = time.perf_counter()
                for _ in range(20):
                    fn()
                out.append(
                    (
                        f"{model.family}, {n} row(s)",
                        label,
                        (time.perf_counter() - started) / 20 * 1000,
                    )
                )
    return out


# --- report -------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000, help="demo rows to train on")
    parser.add_argument("--seconds", type=float, default=60.0, help="seconds per rate step")
    parser.add_argument(
        "--rates",
        type=int,
        nargs="+",
        default=[100, 200, 400, 600, 800, 1000, 1200, 1600, 2000, 2400, 2800, 3200],
    )
    parser.add_argument("--concurrency", type=int, default=512, help="open connections, at most")
    parser.add_argument("--batch-rows", type=int, default=10_000)
    parser.add_argument("--batch-requests", type=int, default=10)
    parser.add_argument("--home", type=Path, help="a new state folder (default: temporary)")
    parser.add_argument(
        "--parts", nargs="+", choices=["single", "batch", "durable"], default=["single", "batch"]
    )
    parser.add_argument(
        "--kill-after", type=int, default=5000, help="durable: answered requests before kill -9"
    )
    parser.add_argument("--kill-rate", type=int, default=1000, help="durable: load while killing")
    args = parser.parse_args()
    print(
        f"nproc={os.cpu_count()} OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')} "
        f"python={platform.python_version()} seconds/step={args.seconds:g}"
    )
    with tempfile.TemporaryDirectory() as temporary:
        home = args.home or Path(temporary) / ".retrain"
        setup = prepare(home, args.rows)

        print("\n| model, rows per call | path | ms per call |\n|---|---|---:|")
        for what, label, ms in single_row_costs(setup):
            print(f"| {what} | {label} | {ms:.2f} |")

        results: dict[str, tuple[list[Step], dict[str, int]]] = {}
        if "single" in args.parts:
            single_rows(setup, args, results)
        if "batch" in args.parts:
            batches(setup, args, results)
        if "durable" in args.parts:
            durable(setup, args, results)
        print("\n| service | requests answered | predictions logged |\n|---|---:|---:|")
        for name, (_, counts) in results.items():
            print(f"| {name} | {counts['ok']:,} of {counts['sent']:,} | {counts['logged']:,} |")
            assert counts["logged"] == counts["ok"], counts


def single_rows(setup: Setup, args: argparse.Namespace, results: dict) -> None:
    for name, max_batch in (("micro-batching (max 256)", 256), ("baseline: max_batch=1", 1)):
        print(f"\n{name}")
        results[name] = run_steps(setup, max_batch, args.rates, args.seconds, args.concurrency)
    print("\n| service | rate (req/s) | p50 ms | p99 ms | max ms | errors | server CPU "
          "| mean batch | client lag p99 ms |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, (steps, _) in results.items():
        for s in steps:
            print(
                f"| {name} | {s.rate} | {s.p50_ms:.1f} | {s.p99_ms:.1f} | {s.max_ms:.0f} "
                f"| {s.errors} | {s.server_cpu:.0%} | {s.mean_batch} | {s.lag_ms:.1f} |"
            )
    (batched, _), (single, _) = results.values()
    fast, slow = sustainable_rate(batched), sustainable_rate(single)
    print(
        f"\nsustainable rate (p99 <= {P99_TARGET_MS:g} ms, no errors): micro-batching "
        f"{fast}/s, baseline {slow}/s: {fast / slow if slow else math.inf:.1f}x"
    )


def batches(setup: Setup, args: argparse.Namespace, results: dict) -> None:
    bodies = [batch_body(setup.frame, args.batch_rows, r) for r in range(args.batch_requests)]
    engine = Registry.from_settings(load_settings(home=setup.home)).engine
    before = count_rows(engine, "demo")["predictions"]
    with retrain_serve(setup.home, 256) as server:
        answered, logged = http_batches(server.url, bodies, args.batch_rows)
    sent = args.batch_rows * args.batch_requests
    counts = {
        "sent": sent,
        "ok": sent,
        "logged": count_rows(engine, "demo")["predictions"] - before,
    }
    results[f"batches of {args.batch_rows:,} rows"] = ([], counts)
    compiled = in_process(setup, args.batch_rows, 5, compiled=True)
    own = in_process(setup, args.batch_rows, 3, compiled=False)
    print(f"\n| batch of {args.batch_rows:,} rows | rows/s | vs HTTP answered |\n|---|---|---:|")
    rows = [
        ("POST /predict/batch: answered (HTTP, validation, routing, scoring)", answered),
        ("POST /predict/batch: answered and written to the log", logged),
        ("baseline: in-process, the service's compiled scorers", compiled),
        ("baseline: in-process, TrainedModel.scores", own),
    ]
    for label, rate in rows:
        print(f"| {label} | {rate:,.0f} | {answered / rate:.2f} |")


# --- durability: the cost of answering only what is on disk, and SIGKILL -----------------


DURABILITY = {"durable": "true", "baseline: answers at once": "false"}


def durable(setup: Setup, args: argparse.Namespace, results: dict) -> None:
    for name, value in DURABILITY.items():
        print(f"\n{name} (RETRAIN_SERVE_DURABLE={value})")
        results[name] = run_steps(
            setup, 256, args.rates, args.seconds, args.concurrency, serve_durable=value
        )
    print("\n| service | rate (req/s) | p50 ms | p99 ms | max ms | errors | server CPU "
          "| mean batch | client lag p99 ms |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name in DURABILITY:
        for s in results[name][0]:
            print(
                f"| {name} | {s.rate} | {s.p50_ms:.1f} | {s.p99_ms:.1f} | {s.max_ms:.0f} "
                f"| {s.errors} | {s.server_cpu:.0%} | {s.mean_batch} | {s.lag_ms:.1f} |"
            )
    fast, slow = (sustainable_rate(results[name][0]) for name in DURABILITY)
    print(
        f"\nsustainable rate (p99 <= {P99_TARGET_MS:g} ms, no errors): durable {fast}/s, "
        f"answering at once {slow}/s: {fast / slow if slow else math.inf:.2f}x"
    )
    print("\n| service | load (req/s) | answered before kill -9 | answered in all "
          "| missing from the log after restart |\n|---|---:|---:|---:|---:|")  # fmt: skip
    for name, value in DURABILITY.items():
        answered, missing = sigkill(setup, args, serve_durable=value)
        print(f"| {name} | {args.kill_rate} | {args.kill_after:,} | {answered:,} | {missing:,} |")
        if value == "true":
            assert missing == 0, f"{missing} answered predictions lost"


def sigkill(setup: Setup, args: argparse.Namespace, **settings: str) -> tuple[int, int]:
    """Open-loop load; ``kill -9`` once ``--kill-after`` requests are answered; restart and
    look every answered prediction id up in the log. (answered, missing)."""
    bodies = row_bodies(setup.frame, 5000)
    answered: list[str] = []
    with retrain_serve(setup.home, 256, **settings) as server:

        def on_answer(prediction_id: bytes) -> None:
            answered.append(prediction_id.decode())
            if len(answered) == args.kill_after:
                os.kill(server.pid, signal.SIGKILL)

        seconds = args.kill_after * 1.5 / args.kill_rate  # the load goes on past the kill
        run_loop(
            open_loop(
                server.url, args.kill_rate, seconds, bodies, f"kill-{settings}", 64, on_answer
            )
        )
    engine = Registry.from_settings(load_settings(home=setup.home)).engine
    with (
        retrain_serve(setup.home, 256) as server,  # replays the spool at start
        httpx.Client(base_url=server.url) as client,
    ):
        wait_for_log(client)
    logged = entities_of(engine, "demo", answered)
    return len(answered), sum(1 for i in answered if i not in logged)


if __name__ == "__main__":
    main()

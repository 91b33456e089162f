"""Benchmark of sending tips against a real server: throughput and latency under load, next to the ceiling
set by the reply-code derivation, and one 100 MiB upload (throughput and the server's memory growth).

    python benchmarks/submit_bench.py            # both backends, ~4 min
    python benchmarks/submit_bench.py --quick    # 5 s load phases, ~1.5 min

For each backend (SQLite in a temporary data directory; PostgreSQL in a fresh database `lykta_bench_<hex>`,
dropped at the end) the script runs `lykta init` and `lykta demo`, starts `lykta serve --workers 2` on a
free loopback port, and drives it with asyncio + httpx, sending tips the way a browser does: GET the form,
POST it for the review page, POST the reviewed answers as multipart to /tip/send with confirm=yes. Three
load phases: 8 and 32 residents sending tips one after another (closed loop), and tips arriving at random
at 0.7 of the ceiling (open loop). Then one resident sends a tip with a 100 MiB file, generated and
streamed in chunks, while the worker processes' memory is read from /proc. It prints, it does not assert
(STYLE rule 11), and it is not part of the test run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import html
import math
import os
import platform
import random
import re
import resource
import secrets
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx

import crypto

KIB = 1024
MIB = 1024 * KIB
LANG = "sv"
WORKERS = 2
CLIENT_COUNTS = (8, 32)
OPEN_LOOP_FRACTION = 0.7  # of the ceiling: the rate of the open-loop phase
OPEN_LOOP_MAX_IN_FLIGHT = 64  # arrivals beyond this many unfinished tips are counted as errors, not sent
DURATION, QUICK_DURATION = 20.0, 5.0  # seconds of measurement per load phase
WARMUP, QUICK_WARMUP = 3.0, 1.0  # seconds of the same load before the measurement window opens
REQUEST_TIMEOUT = 30.0
# After a failed tip the resident pauses before starting again. A resident told "busy, try again in a
# minute" does not come back within milliseconds; without a pause the closed loop turns each quick 503 into
# a new form and review at once, a retry storm that measures the load generator rather than the server.
ERROR_PAUSE = 1.0
DERIVATION_RUNS = 7
UPLOAD_BYTES = 100 * MIB
UPLOAD_CHUNK = 1 * MIB
# The server refuses upload bodies over max_upload_bytes + 1 MiB (default 101 MiB). A 100 MiB file and the
# form fit, but narrowly; the benchmark's server gets LYKTA_MAX_UPLOAD_BYTES=110000000 so the measurement
# never depends on that margin, and the output says so.
MAX_UPLOAD_BYTES = 110_000_000
# The tip's one Argon2id derivation (64 MiB, freed when it ends) runs when the file part's headers arrive,
# before the server reads the file. The server cannot have read further than the loopback socket buffers
# (tcp_rmem max + tcp_wmem max, 36 MiB on the reference machine) before it is done, so memory read once the
# client has sent this much is the file's alone.
AFTER_DERIVATION_BYTES = 48 * MIB
RSS_SAMPLE_INTERVAL = 0.005
NOISY_OTHER_CPU = 0.25  # other processes using more than this share of one core make a row suspect
AIM_RATIO = 0.7
AIM_P99 = 1.0
AIM_UPLOAD_GROWTH = 64 * MIB
PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"

ANSWERS = {
    "municipality": "sodertalje",
    "category": "drugs",
    "what": "Försäljning vid busshållplatsen varje kväll.",
    "when": "Varje kväll efter 22",
    "where": "Busshållplatsen vid torget",
    "how_known": "saw",
    "who": "Två personer i en svart bil",
    "contact": "",
}


# Every httpx client builds an SSL context (loading the CA bundle, milliseconds of CPU) unless given one;
# the benchmark speaks plain HTTP on loopback, so its many clients share this one.
PLAIN_HTTP_CONTEXT = ssl.create_default_context()


def log(message: str) -> None:
    print(f"  .. {message}", file=sys.stderr, flush=True)


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(fraction * len(ordered) + 0.5)))
    return ordered[rank - 1]


# --- the ceiling --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Derivation:
    wall: float  # median seconds of one derivation: what the ceiling is made of
    cpu: float  # median CPU seconds of the same runs: what it costs, however busy the machine is


def measure_derivation() -> Derivation:
    """One `derive_mailbox` at REPLY_CODE_PARAMS_V1 in this process: median of DERIVATION_RUNS."""
    code = crypto.ReplyCode.generate()
    salt, pepper = os.urandom(16), os.urandom(32)
    params = crypto.REPLY_CODE_PARAMS_V1

    def derive() -> None:
        crypto.derive_mailbox(code, instance_salt=salt, pepper=pepper, params=params)

    derive()  # warm-up: first touch of the 64 MiB
    walls, cpus = [], []
    for _ in range(DERIVATION_RUNS):
        start, start_cpu = time.perf_counter(), time.process_time()
        derive()
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - start_cpu)
    return Derivation(wall=statistics.median(walls), cpu=statistics.median(cpus))


# --- processes, from /proc ----------------------------------------------------------------------------------


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of `pid` in bytes (empty if the process is gone)."""
    values: dict[str, int] = {}
    with contextlib.suppress(FileNotFoundError, ProcessLookupError), open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0]) * KIB
    return values


def proc_cpu_seconds(pid: int) -> float:
    """User + system CPU time of `pid` so far (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy (all cores), from /proc/stat."""
    with open("/proc/stat") as f:
        user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in f.readline().split()[1:9])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def postgres_backends(database: str) -> list[int]:
    """The PostgreSQL server processes serving `database` (their title is `postgres: USER DB ...`)."""
    pids = []
    wanted = f" {database} ".encode()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                cmdline = (entry / "cmdline").read_bytes()
                if cmdline.startswith(b"postgres: ") and wanted in cmdline:
                    pids.append(int(entry.name))
    return pids


def children_of(pid: int) -> list[int]:
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(FileNotFoundError):
            children += [int(c) for c in (task / "children").read_text().split()]
    return children


def connections_per_worker(port: int, pids: list[int]) -> list[int]:
    """How many established connections to `port` each of `pids` holds (from /proc/net/tcp and fds)."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError), open(table) as f:
            for line in list(f)[1:]:
                fields = line.split()
                local_port = int(fields[1].rsplit(":", 1)[1], 16)
                if local_port == port and fields[3] == "01":  # ESTABLISHED, server side
                    inodes.add(fields[9])
    counts = []
    for pid in pids:
        held = 0
        for fd in Path(f"/proc/{pid}/fd").glob("*"):
            with contextlib.suppress(OSError):
                target = os.readlink(fd)
                if target.startswith("socket:[") and target[8:-1] in inodes:
                    held += 1
        counts.append(held)
    return counts


def reset_peak_rss(pid: int) -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0, our own process). False if the kernel refuses."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


# --- the server ---------------------------------------------------------------------------------------------


def lykta_command() -> list[str]:
    script = Path(sys.executable).parent / "lykta"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from portal.cli import main; main()"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """`lykta serve --workers 2` as a subprocess, in its own process group, logging to the temp dir."""

    def __init__(self, env: dict[str, str], workdir: Path, *, database_name: str | None) -> None:
        self.env = env
        self.workdir = workdir
        self.database_name = database_name  # PostgreSQL: whose server processes count as the database's
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / "server.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [*lykta_command(), "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        with open(self.log_path, "wb") as log_file:
            self.process = subprocess.Popen(
                [*command, "--workers", str(WORKERS)],
                env=self.env,
                cwd=self.workdir,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 60
        with httpx.Client(base_url=self.base_url, timeout=2) as client:
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError(f"the server exited ({self.process.returncode}):\n{self.log_tail()}")
                with contextlib.suppress(httpx.HTTPError):
                    if client.get("/healthz").text == "ok" and len(self.worker_pids()) == WORKERS:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the server did not come up within 60 s:\n{self.log_tail()}")
                time.sleep(0.1)
            # Both workers import the app before they accept; give the slower one a moment, then check.
            time.sleep(1.0)
            client.get("/healthz").raise_for_status()

    def worker_pids(self) -> list[int]:
        """The uvicorn worker processes: the supervisor's children started by multiprocessing's spawn."""
        assert self.process is not None
        workers = []
        for pid in children_of(self.process.pid):
            with contextlib.suppress(FileNotFoundError):
                if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    workers.append(pid)
        return sorted(workers)

    def database_cpu(self) -> dict[int, float]:
        """CPU seconds so far of each PostgreSQL process serving this server's database (empty: SQLite)."""
        if self.database_name is None:
            return {}
        return {pid: proc_cpu_seconds(pid) for pid in postgres_backends(self.database_name)}

    def first_exception(self) -> str | None:
        """The last line of the first traceback in the server's log (what a 500 was), if there is one."""
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return None
        start = next((i for i, line in enumerate(lines) if line.startswith("Traceback")), None)
        if start is None:
            return None
        rest = lines[start + 1 :]
        return next((line for line in rest if line and not line.startswith((" ", "Traceback"))), None)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)  # the group is this server's, started above
            self.process.wait(timeout=10)


def server_env(data_dir: Path, database_url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LYKTA_")}
    env["LYKTA_DATA_DIR"] = str(data_dir)
    if database_url:
        env["LYKTA_DATABASE_URL"] = database_url
    env["LYKTA_MAX_UPLOAD_BYTES"] = str(MAX_UPLOAD_BYTES)
    return env


def init_instance(env: dict[str, str], workdir: Path) -> None:
    for args in (["init"], ["demo"]):
        result = subprocess.run(
            [*lykta_command(), *args], env=env, cwd=workdir, capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(f"lykta {args[0]} failed:\n{result.stdout}\n{result.stderr}")


@contextlib.contextmanager
def postgres_database(admin_url: str) -> Iterator[tuple[str, str]]:
    """A new, empty database (its URL and name), dropped on the way out."""
    import psycopg
    from psycopg import sql

    name = f"lykta_bench_{secrets.token_hex(4)}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield str(httpx.URL(admin_url).copy_with(path=f"/{name}")), name
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        log(f"dropped database {name}")


# --- one resident's tip -------------------------------------------------------------------------------------

_FORM_RE = r'<form[^>]*action="{action}".*?</form>'
_HIDDEN_RE = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


def hidden_fields(page: str, action: str) -> dict[str, str] | None:
    """The hidden inputs of the form posting to `action`, as a browser would send them."""
    form = re.search(_FORM_RE.format(action=re.escape(action)), page, re.S)
    if not form:
        return None
    return {html.unescape(n): html.unescape(v) for n, v in _HIDDEN_RE.findall(form.group(0))}


def multipart_head(boundary: str, fields: dict[str, str], filename: str) -> bytes:
    """Every field, then the head of one file part (`filename` empty: no file chosen, as browsers send)."""
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        for name, value in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    )
    return "".join(parts).encode("utf-8")


def multipart_tail(boundary: str) -> bytes:
    return f"\r\n--{boundary}--\r\n".encode("ascii")


@dataclasses.dataclass
class TipResult:
    started: float
    ended: float
    error: str | None  # None: the reply code page came back
    latency: dict[str, float]  # request kind -> seconds


class TipFailedError(Exception):
    pass


async def review_step(client: httpx.AsyncClient, latency: dict[str, float]) -> dict[str, str]:
    """GET the form and POST it; the fields the review page's send form carries (csrf included)."""
    t = time.perf_counter()
    form = await client.get(f"/{LANG}/tip")
    latency["form"] = time.perf_counter() - t
    token = (hidden_fields(form.text, f"/{LANG}/tip") or {}).get("csrf")
    if form.status_code != 200 or not token:
        raise TipFailedError(f"form {form.status_code}")
    t = time.perf_counter()
    review = await client.post(f"/{LANG}/tip", data={**ANSWERS, "csrf": token})
    latency["review"] = time.perf_counter() - t
    fields = hidden_fields(review.text, f"/{LANG}/tip/send")
    if review.status_code != 200 or not fields or "csrf" not in fields:
        raise TipFailedError(f"review {review.status_code}")
    return {**fields, "confirm": "yes"}


def check_sent(response: httpx.Response) -> None:
    if response.status_code != 200:
        raise TipFailedError(f"send {response.status_code}")
    if 'id="reply-code"' not in response.text:
        raise TipFailedError("send 200 without reply code")


async def send_small_tip(client: httpx.AsyncClient, *, new_resident: bool) -> TipResult:
    """One tip, three requests. `new_resident`: start with no cookies, and close the connection after the
    last request, so the next tip comes from a new browser on a new connection (one that the kernel may
    hand to either worker). Cheaper for the load generator than a new AsyncClient per tip."""
    latency: dict[str, float] = {}
    started = time.perf_counter()
    error = None
    if new_resident:
        client.cookies.clear()
    try:
        fields = await review_step(client, latency)
        boundary = f"lyktabench{secrets.token_hex(12)}"
        body = multipart_head(boundary, fields, filename="") + multipart_tail(boundary)
        headers = {"content-type": f"multipart/form-data; boundary={boundary}"}
        if new_resident:
            headers["connection"] = "close"
        t = time.perf_counter()
        sent = await client.post(f"/{LANG}/tip/send", content=body, headers=headers)
        latency["send"] = time.perf_counter() - t
        check_sent(sent)
    except TipFailedError as failure:
        error = str(failure)
    except httpx.HTTPError as failure:
        error = f"{type(failure).__name__} after {', '.join(latency) or 'nothing'}"
    return TipResult(started, time.perf_counter(), error, latency)


# --- load ---------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Phase:
    """A closed loop of `clients` residents, or (clients None) an open loop of arrivals at `rate`."""

    clients: int | None = None
    rate: float | None = None

    @property
    def label(self) -> str:
        return f"{self.clients}" if self.clients is not None else f"{self.rate:.1f}/s"

    @property
    def long_label(self) -> str:
        return f"{self.clients} clients" if self.clients is not None else f"{self.rate:.1f}/s open"


@dataclasses.dataclass
class LoadResult:
    backend: str
    phase: Phase
    duration: float
    tips: int  # successful tips that ended inside the measurement window
    tip_latencies: list[float]  # successful tips started inside the window (including those ending after)
    kind_latencies: dict[str, list[float]]
    errors: Counter[str]
    worker_cpu: list[float]  # CPU seconds of each worker during the window, per wall second
    database_cpu: float | None  # the same for the PostgreSQL processes serving the database (None: SQLite)
    client_cpu: float  # the same for this process (the load generator shares the machine)
    other_cpu: float  # the same for everything else on the machine (others' work makes the figures noisy)
    connections: list[float]  # established connections held by each worker, mean of one sample a second
    max_in_flight: int

    @property
    def tips_per_second(self) -> float:
        return self.tips / self.duration


@dataclasses.dataclass
class _Mark:
    at: float
    workers: list[float]
    database: dict[int, float]
    client: float
    machine: float


async def run_load(
    server: Server, backend: str, phase: Phase, warmup: float, duration: float, *, reuse_connections: bool
) -> LoadResult:
    results: list[TipResult] = []
    loop_start = time.perf_counter()
    window_start, window_end = loop_start + warmup, loop_start + warmup + duration
    workers = server.worker_pids()
    marks: dict[str, _Mark] = {}
    connection_samples: list[list[int]] = []
    in_flight = 0
    max_in_flight = 0

    async def mark(name: str, at: float) -> None:
        await asyncio.sleep(max(0.0, at - time.perf_counter()))
        marks[name] = _Mark(
            at=time.perf_counter(),
            workers=[proc_cpu_seconds(pid) for pid in workers],
            database=server.database_cpu(),
            client=time.process_time(),
            machine=machine_busy_seconds(),
        )

    async def sample_connections() -> None:
        await asyncio.sleep(max(0.0, window_start - time.perf_counter()))
        while time.perf_counter() < window_end:
            connection_samples.append(connections_per_worker(server.port, workers))
            await asyncio.sleep(1.0)

    def new_client() -> httpx.AsyncClient:
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        return httpx.AsyncClient(
            base_url=server.base_url, timeout=REQUEST_TIMEOUT, limits=limits, verify=PLAIN_HTTP_CONTEXT
        )

    async def one_tip(client: httpx.AsyncClient, *, new_resident: bool) -> TipResult:
        nonlocal in_flight, max_in_flight
        in_flight += 1
        max_in_flight = max(max_in_flight, in_flight)
        try:
            result = await send_small_tip(client, new_resident=new_resident)
        finally:
            in_flight -= 1
        results.append(result)
        return result

    async def resident() -> None:
        async with new_client() as client:
            while time.perf_counter() < window_end:
                result = await one_tip(client, new_resident=not reuse_connections)
                if result.error:
                    await asyncio.sleep(ERROR_PAUSE)

    async def arrivals(rate: float) -> None:
        """Poisson arrivals; each tip a new resident (idle clients are reused to spare this process)."""
        idle: list[httpx.AsyncClient] = []
        tasks: set[asyncio.Task[None]] = set()
        rng = random.Random()  # arrival times, not secrets

        async def arrive() -> None:
            client = idle.pop() if idle else new_client()
            try:
                await one_tip(client, new_resident=True)
            finally:
                idle.append(client)

        next_arrival = loop_start
        while next_arrival < window_end:
            await asyncio.sleep(max(0.0, next_arrival - time.perf_counter()))
            if in_flight >= OPEN_LOOP_MAX_IN_FLIGHT:
                now = time.perf_counter()
                results.append(TipResult(now, now, f"not sent: {OPEN_LOOP_MAX_IN_FLIGHT} tips in flight", {}))
            else:
                task = asyncio.create_task(arrive())
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            next_arrival += rng.expovariate(rate)
        await asyncio.gather(*tasks)
        for client in idle:
            await client.aclose()

    if phase.clients is not None:
        load = [resident() for _ in range(phase.clients)]
    else:
        assert phase.rate is not None
        load = [arrivals(phase.rate)]
    await asyncio.gather(mark("start", window_start), mark("end", window_end), sample_connections(), *load)

    in_window = [r for r in results if r.started >= window_start]
    ok = [r for r in in_window if r.error is None]
    kinds: dict[str, list[float]] = {}
    for r in ok:
        for kind, seconds in r.latency.items():
            kinds.setdefault(kind, []).append(seconds)
    start, end = marks["start"], marks["end"]
    elapsed = max(end.at - start.at, 1e-9)  # the marks' own times: a busy event loop may run them late
    worker_cpu = [(e - s) / elapsed for s, e in zip(start.workers, end.workers, strict=True)]
    database_cpu = (
        sum(cpu - start.database.get(pid, 0.0) for pid, cpu in end.database.items()) / elapsed
        if server.database_name is not None
        else None
    )
    client_cpu = (end.client - start.client) / elapsed
    accounted = sum(worker_cpu) + (database_cpu or 0.0) + client_cpu
    return LoadResult(
        backend=backend,
        phase=phase,
        duration=duration,
        tips=sum(1 for r in results if r.error is None and window_start <= r.ended <= window_end),
        tip_latencies=[r.ended - r.started for r in ok],
        kind_latencies=kinds,
        errors=Counter(r.error for r in in_window if r.error is not None),
        worker_cpu=worker_cpu,
        database_cpu=database_cpu,
        client_cpu=client_cpu,
        other_cpu=max(0.0, (end.machine - start.machine) / elapsed - accounted),
        connections=[statistics.mean(column) for column in zip(*connection_samples, strict=True)],
        max_in_flight=max_in_flight,
    )


# --- the 100 MiB upload -------------------------------------------------------------------------------------


class RssSampler(threading.Thread):
    """Reads VmRSS of the given processes every few milliseconds until stopped."""

    def __init__(self, pids: list[int]) -> None:
        super().__init__(daemon=True)
        self.pids = pids
        self.samples: list[tuple[float, int, int]] = []  # (time, pid, rss)
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            now = time.perf_counter()
            for pid in self.pids:
                rss = proc_status(pid).get("VmRSS")
                if rss is not None:
                    self.samples.append((now, pid, rss))
            self._stop_event.wait(RSS_SAMPLE_INTERVAL)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()

    def peak(self, pid: int, since: float = 0.0) -> int:
        return max((rss for t, p, rss in self.samples if p == pid and t >= since), default=0)


@dataclasses.dataclass
class WorkerMemory:
    pid: int
    rss_before: int
    rss_after: int
    hwm_before: int
    hwm_after: int
    hwm_was_reset: bool
    sampled_peak: int
    sampled_peak_after_derivation: int

    @property
    def peak(self) -> int:
        """The worker's peak RSS during the request: the kernel's (VmHWM, reset just before) if it could be
        reset, else the sampled one."""
        return max(self.hwm_after, self.sampled_peak) if self.hwm_was_reset else self.sampled_peak

    @property
    def growth(self) -> int:
        return self.peak - self.rss_before

    @property
    def growth_after_derivation(self) -> int:
        return self.sampled_peak_after_derivation - self.rss_before


@dataclasses.dataclass
class UploadResult:
    backend: str
    seconds: float
    error: str | None
    workers: list[WorkerMemory]

    @property
    def mib_per_second(self) -> float:
        return UPLOAD_BYTES / MIB / self.seconds

    @property
    def handler(self) -> WorkerMemory:
        """The worker that handled the upload: the one whose memory grew most."""
        return max(self.workers, key=lambda w: w.growth)


async def run_upload(server: Server, backend: str) -> UploadResult:
    workers = server.worker_pids()
    sent_marks: dict[str, float] = {}

    async def body(head: bytes, tail: bytes) -> AsyncIterator[bytes]:
        yield head
        sent = 0
        while sent < UPLOAD_BYTES:
            chunk = os.urandom(min(UPLOAD_CHUNK, UPLOAD_BYTES - sent))
            yield chunk
            sent += len(chunk)
            if sent >= AFTER_DERIVATION_BYTES and "after_derivation" not in sent_marks:
                sent_marks["after_derivation"] = time.perf_counter()
        yield tail

    async with httpx.AsyncClient(base_url=server.base_url, timeout=300) as client:
        fields = await review_step(client, {})
        boundary = f"lyktabench{secrets.token_hex(12)}"
        head = multipart_head(boundary, fields, filename="recording.bin")
        tail = multipart_tail(boundary)
        await asyncio.sleep(1.0)  # let the workers settle after the review requests
        before = {pid: proc_status(pid) for pid in workers}
        reset = {pid: reset_peak_rss(pid) for pid in workers}
        sampler = RssSampler(workers)
        sampler.start()
        error = None
        started = time.perf_counter()
        try:
            sent = await client.post(
                f"/{LANG}/tip/send",
                content=body(head, tail),
                headers={
                    "content-type": f"multipart/form-data; boundary={boundary}",
                    "content-length": str(len(head) + UPLOAD_BYTES + len(tail)),
                },
            )
            check_sent(sent)
        except TipFailedError as failure:
            error = str(failure)
        except httpx.HTTPError as failure:
            error = type(failure).__name__
        seconds = time.perf_counter() - started
        sampler.stop()
    after = {pid: proc_status(pid) for pid in workers}
    after_derivation = sent_marks.get("after_derivation", float("inf"))
    memory = [
        WorkerMemory(
            pid=pid,
            rss_before=before[pid].get("VmRSS", 0),
            rss_after=after[pid].get("VmRSS", 0),
            hwm_before=before[pid].get("VmHWM", 0),
            hwm_after=after[pid].get("VmHWM", 0),
            hwm_was_reset=reset[pid],
            sampled_peak=sampler.peak(pid),
            sampled_peak_after_derivation=sampler.peak(pid, since=after_derivation),
        )
        for pid in workers
    ]
    return UploadResult(backend=backend, seconds=seconds, error=error, workers=memory)


# --- one backend --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Options:
    warmup: float
    duration: float
    reuse_connections: bool
    pg_admin_url: str


def bench_backend(
    backend: str,
    database: tuple[str, str] | None,
    workdir: Path,
    options: Options,
    phases: list[Phase],
) -> tuple[list[LoadResult], UploadResult, str | None]:
    url, name = database if database else (None, None)
    env = server_env(workdir / "data", url)
    log(f"{backend}: lykta init, lykta demo")
    init_instance(env, workdir)
    server = Server(env, workdir, database_name=name)
    try:
        server.start()
        log(f"{backend}: serving on {server.base_url}, workers {server.worker_pids()}")
        loads = []
        for phase in phases:
            what = f"{phase.clients} residents" if phase.clients else f"tips arriving at {phase.rate:.1f}/s"
            log(f"{backend}: {what}, {options.warmup:.0f} s warm-up + {options.duration:.0f} s")
            load = run_load(
                server,
                backend,
                phase,
                options.warmup,
                options.duration,
                reuse_connections=options.reuse_connections,
            )
            loads.append(asyncio.run(load))
        log(f"{backend}: one tip with a {UPLOAD_BYTES // MIB} MiB file")
        upload = asyncio.run(run_upload(server, backend))
        server_exception = server.first_exception()
    except BaseException:
        print(f"server log ({backend}), last lines:\n{server.log_tail()}", file=sys.stderr)
        raise
    finally:
        server.stop()
    return loads, upload, server_exception


# --- report -------------------------------------------------------------------------------------------------


def note(text: str) -> None:
    print(textwrap.fill(text, width=108, initial_indent="  ", subsequent_indent="  "))


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f}"


def mib(size: int) -> str:
    return f"{size / MIB:.1f}"


def verdict(r: LoadResult, ratio: float) -> str:
    misses = []
    p99 = percentile(r.tip_latencies, 0.99)
    if r.phase.clients is not None and ratio < AIM_RATIO:
        misses.append(f"ratio < {AIM_RATIO}")
    if r.phase.clients == max(CLIENT_COUNTS) and not p99 < AIM_P99:
        misses.append(f"p99 >= {AIM_P99:.0f} s")
    if r.phase.rate is not None:
        if r.tips_per_second < 0.95 * r.phase.rate:
            misses.append("fell behind the arrivals")
        if not p99 < AIM_P99:
            misses.append(f"p99 >= {AIM_P99:.0f} s")
    if r.errors:
        misses.append("errors")
    if r.other_cpu > NOISY_OTHER_CPU:
        misses.append(f"NOISY: other processes used {r.other_cpu * 100:.0f}%")
    return "; ".join(misses) or "ok"


def code_version() -> str:
    """The commit measured, and whether tracked files had uncommitted changes."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (no git)"
    return f"{head}" + (f" with {len(changed)} changed files uncommitted" if changed else "")


def report(
    derivation: Derivation,
    loads: list[LoadResult],
    uploads: list[UploadResult],
    server_exceptions: dict[str, str],
    options: Options,
) -> None:
    cores = os.cpu_count() or 1
    ceiling = cores / derivation.wall
    params = crypto.REPLY_CODE_PARAMS_V1
    print()
    print(f"Lykta submit benchmark, code {code_version()}")
    print(
        f"  machine: {platform.machine()}, {cores} cores, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}; load generator, server and database share it"
    )
    print(
        f"  server: lykta serve --workers {WORKERS} on 127.0.0.1, with "
        f"LYKTA_MAX_UPLOAD_BYTES={MAX_UPLOAD_BYTES} (default 100 MiB; raised so a 100 MiB file and the form "
        "fit with room); other settings default"
    )
    connections = (
        "each resident keeps one connection for all its tips (--reuse-connections)"
        if options.reuse_connections
        else "each tip from a new resident: new cookies, a new connection kept for its three requests"
    )
    print(
        f"  load: closed loop of {' and '.join(map(str, CLIENT_COUNTS))} residents sending small tips (no "
        f"file) one after another, then an open loop of tips arriving at random at {OPEN_LOOP_FRACTION} of "
        f"the ceiling; each phase {options.warmup:.0f} s warm-up + {options.duration:.0f} s measured; "
        f"{connections}"
    )
    print(
        f"  ceiling: derive_mailbox at {params.name} (Argon2id ops={params.opslimit}, "
        f"mem={params.memlimit // MIB} MiB): median of {DERIVATION_RUNS} = {derivation.wall * 1000:.1f} ms "
        f"({derivation.cpu * 1000:.1f} ms CPU); {cores} cores / {derivation.wall * 1000:.1f} ms = "
        f"{ceiling:.1f} tips/s"
    )
    if derivation.wall > 1.15 * derivation.cpu:
        print(
            "  WARNING: a derivation took longer than its CPU time: the machine was busy while the ceiling "
            "was measured, so the ceiling is low and every ratio high"
        )
    print()
    header = (
        f"{'backend':<11}{'clients':>8}{'tips/s':>8}{'p50 ms':>8}{'p99 ms':>8}{'errors':>8}{'ceiling':>9}"
        f"{'ratio':>7}  verdict"
    )
    print(header)
    print("-" * len(header))
    for r in loads:
        ratio = r.tips_per_second / ceiling
        p50, p99 = ms(percentile(r.tip_latencies, 0.5)), ms(percentile(r.tip_latencies, 0.99))
        print(
            f"{r.backend:<11}{r.phase.label:>8}{r.tips_per_second:>8.1f}{p50:>8}{p99:>8}"
            f"{sum(r.errors.values()):>8}{ceiling:>9.1f}{ratio:>7.2f}  {verdict(r, ratio)}"
        )
    print()
    floor = max(CLIENT_COUNTS) / ceiling
    note(
        "clients: residents in the closed loop, or the arrival rate of the open loop. tips/s: tips whose "
        "reply-code page came back inside the measured window; p50/p99: the whole tip (three requests) for "
        "tips started inside it; ratio: tips/s / ceiling (aim >= 0.7; p99 < 1 s at 32 clients). errors: "
        f"tips that failed (a closed-loop resident then pauses {ERROR_PAUSE:.0f} s). A closed loop without "
        "pauses keeps every resident waiting: by Little's law the mean tip latency is clients / tips/s, so "
        f"at {max(CLIENT_COUNTS)} residents it is at least {max(CLIENT_COUNTS)} / {ceiling:.1f} = "
        f"{floor:.2f} s even at the ceiling. The open-loop row is the latency at {OPEN_LOOP_FRACTION} of the "
        "ceiling with as many tips in flight as arrive (at most "
        f"{max((r.max_in_flight for r in loads if r.phase.rate is not None), default=0)} here)."
    )
    print()
    header = (
        f"{'CPU, % of a core':<19}{'workers':>13}{'db':>6}{'client':>8}{'other':>7}{'conns':>11}"
        f"{'server ms/tip':>15}{'client ms/tip':>15}{'ratio (CPU)':>13}"
    )
    print(header)
    print("-" * len(header))
    for r in loads:
        worker_cpu = "+".join(f"{cpu * 100:.0f}" for cpu in r.worker_cpu) + "%"
        database_cpu = "-" if r.database_cpu is None else f"{r.database_cpu * 100:.0f}%"
        connections_held = "/".join(f"{c:.1f}" for c in r.connections)
        server_ms = (sum(r.worker_cpu) + (r.database_cpu or 0.0)) / r.tips_per_second if r.tips else math.nan
        client_ms = r.client_cpu / r.tips_per_second if r.tips else math.nan
        print(
            f"{r.backend:<11}{r.phase.label:>8}{worker_cpu:>13}{database_cpu:>6}{r.client_cpu * 100:>7.0f}%"
            f"{r.other_cpu * 100:>6.0f}%{connections_held:>11}{ms(server_ms):>15}{ms(client_ms):>15}"
            f"{derivation.cpu / (server_ms + client_ms):>13.2f}"
        )
    print()
    note(
        "Where the CPU went in each window, in % of one core: each server worker, the PostgreSQL processes "
        "serving the database, this load generator, and everything else on the machine (over "
        f"{NOISY_OTHER_CPU * 100:.0f}% marks the row NOISY above: someone else's work took cores the ceiling "
        "counts). conns: connections each worker held, mean of a sample a second (the kernel, not uvicorn, "
        "spreads them). server ms/tip: CPU of the workers and the database per tip sent, failed attempts "
        "included; it holds steady when the machine is busy. ratio (CPU): the derivation's CPU time / "
        "(server + client CPU per tip): the ratio this code would reach with the machine to itself and "
        "perfect scheduling."
    )
    print()
    print(f"per request, p50 / p99 ms{'':<5}{'form (GET)':>14}{'review (POST)':>16}{'send (POST)':>16}")
    for r in loads:
        cells = ""
        for kind, width in (("form", 14), ("review", 16), ("send", 16)):
            values = r.kind_latencies.get(kind, [])
            cells += f"{ms(percentile(values, 0.5)) + ' / ' + ms(percentile(values, 0.99)):>{width}}"
        print(f"  {r.backend:<11}{r.phase.long_label:>14}{cells}")
    errors = [(r, kind, n) for r in loads for kind, n in r.errors.most_common()]
    if errors or server_exceptions:
        print()
        print("errors:")
        for r, kind, n in errors:
            print(f"  {r.backend:<11}{r.phase.long_label:>14}  {n:>5} x {kind}")
        for backend, exception in server_exceptions.items():
            print(f"  {backend:<11}the server's first traceback ends: {exception}")
    print()
    header = (
        f"{'upload':<11}{'MiB':>6}{'seconds':>9}{'MiB/s':>8}{'RSS before':>12}{'peak':>8}{'growth':>8}"
        f"{'growth (file)':>15}{'HWM before':>12}{'HWM after':>11}  verdict"
    )
    print(header)
    print("-" * len(header))
    for u in uploads:
        w = u.handler
        over = w.growth_after_derivation >= AIM_UPLOAD_GROWTH
        upload_verdict = u.error or (f"OVER AIM ({AIM_UPLOAD_GROWTH // MIB} MiB)" if over else "ok")
        print(
            f"{u.backend:<11}{UPLOAD_BYTES // MIB:>6}{u.seconds:>9.2f}{u.mib_per_second:>8.1f}"
            f"{mib(w.rss_before):>12}{mib(w.peak):>8}{mib(w.growth):>8}{mib(w.growth_after_derivation):>15}"
            f"{mib(w.hwm_before):>12}{mib(w.hwm_after):>11}  {upload_verdict}"
        )
        for other in (o for o in u.workers if o.pid != w.pid):
            print(f"{'':<11}(other worker: RSS {mib(other.rss_before)} -> peak {mib(other.peak)} MiB)")
    print()
    note(
        "Sizes in MiB, of the worker that handled the upload (the one whose memory grew); MiB/s over the "
        "whole send request. peak: the worker's VmHWM, reset just before the request (/proc/PID/clear_refs), "
        f"or else its RSS sampled every {RSS_SAMPLE_INTERVAL * 1000:.0f} ms. growth = peak - RSS before; "
        f"it includes the tip's one Argon2id derivation ({params.memlimit // MIB} MiB, freed before the file "
        "is read). growth (file): the sampled RSS peak once the client had sent "
        f"{AFTER_DERIVATION_BYTES // MIB} MiB (the derivation is over by then), minus RSS before: what "
        f"streaming, encrypting and storing the file cost, held against the {AIM_UPLOAD_GROWTH // MIB} MiB "
        "aim. HWM before: the worker's peak since it started (the load phases)."
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="5 s load phases instead of 20 s")
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "all"), default="all")
    parser.add_argument("--pg-admin-url", default=PG_ADMIN_URL, help="where to create the bench database")
    parser.add_argument(
        "--reuse-connections",
        action="store_true",
        help="each resident keeps one connection for all its tips (default: a new resident per tip)",
    )
    args = parser.parse_args()
    options = Options(
        warmup=QUICK_WARMUP if args.quick else WARMUP,
        duration=QUICK_DURATION if args.quick else DURATION,
        reuse_connections=args.reuse_connections,
        pg_admin_url=args.pg_admin_url,
    )
    started = time.perf_counter()

    log("measuring one reply-code derivation")
    derivation = measure_derivation()
    ceiling = (os.cpu_count() or 1) / derivation.wall
    phases = [Phase(clients=n) for n in CLIENT_COUNTS] + [Phase(rate=OPEN_LOOP_FRACTION * ceiling)]
    loads: list[LoadResult] = []
    uploads: list[UploadResult] = []
    server_exceptions: dict[str, str] = {}
    backends = ("sqlite", "postgresql") if args.backend == "all" else (args.backend,)
    for backend in backends:
        workdir = Path(tempfile.mkdtemp(prefix=f"lykta-bench-{backend}-"))
        try:
            with contextlib.ExitStack() as stack:
                database = None
                if backend == "postgresql":
                    database = stack.enter_context(postgres_database(options.pg_admin_url))
                backend_loads, upload, exception = bench_backend(backend, database, workdir, options, phases)
            loads += backend_loads
            uploads.append(upload)
            if exception:
                server_exceptions[backend] = exception
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    report(derivation, loads, uploads, server_exceptions, options)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print()
    print(f"total run time: {time.perf_counter() - started:.0f} s (this process: {usage.ru_utime:.0f} s CPU)")


if __name__ == "__main__":
    main()

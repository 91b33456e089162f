"""Benchmark of a bounded mixed workload against `lykta serve --workers 2` on PostgreSQL, next to a minimal
Starlette endpoint served the same way as the ceiling (issue 6, item 5).

    python benchmarks/load_bench.py                  # 20 residents x 3 tips, 6 officers x 12 rounds; ~1 min
    python benchmarks/load_bench.py --residents 20 --tips 4 --rounds 12 --seed 7

It makes a fresh database `lykta_bench_<hex>` at `--pg-admin-url` (dropped at the end), runs `lykta init`
and `lykta demo --accounts-json`, and starts `lykta serve --workers 2` on a free loopback port with the real
Argon2id parameters it serves with. Then, all at once, with httpx (asyncio, one client per virtual user):

* residents: each sends `--tips` tips the way a browser does (GET the form, POST it for the review, POST
  the send as multipart), one in three with a file of random bytes (256 KiB to 1 MiB); after each tip the
  resident follows it up: logs in with the reply code, reads the mailbox, answers;
* officers: the six demo accounts that hold desk keys each log in once (passphrase and TOTP), then do
  `--rounds` rounds of: an inbox page, open a tip from it, and every other round reply to that tip.

Every count is fixed and every choice comes from `--seed`, so two runs do the same work. It reports, per
action, how many there were, their throughput over the whole mixed phase and p50/p99 latency; the peak RSS
of the server's processes (read from /proc: each worker's VmHWM, and the largest sum of VmRSS over the
supervisor and workers sampled every 50 ms); and the same figures for a one-route Starlette app served by
uvicorn with the same worker count and options, measured just before and just after in the same run, with
the ratios. It prints, it does not assert (STYLE rule 11), and it is not part of the test run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx
import pyotp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from submit_bench import (  # a sibling script, not a package
    ANSWERS,
    KIB,
    MIB,
    PG_ADMIN_URL,
    PLAIN_HTTP_CONTEXT,
    Server,
    children_of,
    free_port,
    hidden_fields,
    log,
    lykta_command,
    machine_busy_seconds,
    percentile,
    postgres_backends,
    postgres_database,
    proc_cpu_seconds,
    proc_status,
    server_env,
)

LANG = "sv"
WORKERS = 2  # submit_bench.Server serves with this many
FILE_SIZES = (256 * KIB, 1 * MIB)
FILE_EVERY = 3  # one tip in this many carries a file
REQUEST_TIMEOUT = 120.0
RSS_INTERVAL = 0.05
NOISY_OTHER_CPU = 0.25
CEILING_REQUESTS_PER_USER = 150
# Where the demo routes tips so that each officer's desk gets some (portal/network/catalogue.py).
TIP_ROUTES = (
    ("sodertalje", "drugs"),  # polisen-sodertalje-tips: erik
    ("sodertalje", "income-support"),  # sodertalje-bistand: anna
    ("eskilstuna", "environment"),  # eskilstuna-miljo: leila
    ("vasteras", "population-register"),  # skatteverket-folkbokforing: mikael
    ("strangnas", "other"),  # pax-ragnhild-bedomning: sara, karin
)
CEILING_APP = textwrap.dedent(
    '''
    """The ceiling: the least a Starlette app served by uvicorn can do per request."""
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route


    async def hello(request):
        return PlainTextResponse("ok")


    app = Starlette(routes=[Route("/", hello)])
    '''
)


# --- measuring ----------------------------------------------------------------------------------------------


class Timings:
    """Latency samples per action, and failures per action (status or exception)."""

    def __init__(self) -> None:
        self.seconds: dict[str, list[float]] = defaultdict(list)
        self.failures: dict[str, list[str]] = defaultdict(list)

    async def time(self, action: str, request: Any, *, expect: int) -> httpx.Response | None:
        start = time.perf_counter()
        try:
            response: httpx.Response = await request
        except httpx.HTTPError as error:
            self.failures[action].append(type(error).__name__)
            return None
        self.seconds[action].append(time.perf_counter() - start)
        if response.status_code != expect:
            self.failures[action].append(str(response.status_code))
            return None
        return response


class RssSampler(threading.Thread):
    """The largest sum of VmRSS over `pids()` seen, every RSS_INTERVAL, until stopped."""

    def __init__(self, pids: Any) -> None:
        super().__init__(daemon=True)
        self.pids = pids
        self.peak_sum = 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            total = sum(proc_status(pid).get("VmRSS", 0) for pid in self.pids())
            self.peak_sum = max(self.peak_sum, total)
            self.done.wait(RSS_INTERVAL)

    def stop(self) -> int:
        self.done.set()
        self.join()
        return self.peak_sum


def server_pids(server_pid: int) -> list[int]:
    """The supervisor and its workers (the multiprocessing resource tracker is left out: it does no work)."""
    workers = []
    for pid in children_of(server_pid):
        with contextlib.suppress(FileNotFoundError):
            if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes():
                workers.append(pid)
    return [server_pid, *sorted(workers)]


@dataclasses.dataclass
class Run:
    """One measured phase: wall time, latencies, memory, and where the machine's CPU went."""

    wall: float
    timings: Timings
    peak_rss_sum: int
    worker_hwm: list[int]
    server_cpu: float
    database_cpu: float
    client_cpu: float
    other_cpu: float

    @property
    def requests(self) -> int:
        return sum(len(v) for v in self.timings.seconds.values())


class CpuWatch:
    def __init__(self, pids: list[int], database: str | None) -> None:
        self.pids, self.database = pids, database

    def _database_cpu(self) -> dict[int, float]:
        return (
            {pid: proc_cpu_seconds(pid) for pid in postgres_backends(self.database)} if self.database else {}
        )

    def __enter__(self) -> CpuWatch:
        self.start_wall = time.perf_counter()
        self.start_server = sum(proc_cpu_seconds(p) for p in self.pids)
        self.start_db = self._database_cpu()
        self.start_client = time.process_time()
        self.start_machine = machine_busy_seconds()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.start_wall
        self.server = sum(proc_cpu_seconds(p) for p in self.pids) - self.start_server
        end_db = self._database_cpu()
        self.db = sum(cpu - self.start_db.get(pid, 0.0) for pid, cpu in end_db.items())
        self.client = time.process_time() - self.start_client
        machine = machine_busy_seconds() - self.start_machine
        self.other = max(0.0, machine - self.server - self.db - self.client)


# --- the mixed workload -------------------------------------------------------------------------------------


def new_client(base_url: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=base_url, timeout=REQUEST_TIMEOUT, verify=PLAIN_HTTP_CONTEXT)


def multipart_file(rng: random.Random, with_file: bool) -> list[tuple[str, tuple[str, bytes, str]]]:
    if not with_file:
        return [("files", ("", b"", "application/octet-stream"))]  # no file chosen, as a browser sends it
    body = rng.randbytes(rng.randint(*FILE_SIZES))
    return [("files", ("photo.bin", body, "application/octet-stream"))]


async def resident(base_url: str, rng: random.Random, tips: int, t: Timings) -> None:
    """Send `tips` tips, following each one up at once: log in with its code, read, answer."""
    for n in range(tips):
        municipality, category = rng.choice(TIP_ROUTES)
        answers = {**ANSWERS, "municipality": municipality, "category": category}
        with_file = rng.randrange(FILE_EVERY) == 0
        async with new_client(base_url) as client:
            form = await t.time("tip: form", client.get(f"/{LANG}/tip"), expect=200)
            token = (hidden_fields(form.text, f"/{LANG}/tip") or {}).get("csrf") if form else None
            if token is None:
                continue
            review = await t.time(
                "tip: review", client.post(f"/{LANG}/tip", data={**answers, "csrf": token}), expect=200
            )
            fields = hidden_fields(review.text, f"/{LANG}/tip/send") if review else None
            if not fields:
                continue
            action = "tip: send with a file" if with_file else "tip: send"
            sent = await t.time(
                action,
                client.post(
                    f"/{LANG}/tip/send",
                    data={**fields, "confirm": "yes"},
                    files=multipart_file(rng, with_file),
                ),
                expect=200,
            )
        code = (
            sent.text.split('id="reply-code"', 1)[1].split(">", 1)[1].split("<", 1)[0].strip()
            if sent
            else None
        )
        if not code:
            continue
        async with new_client(base_url) as client:
            login = await t.time("follow-up: form", client.get(f"/{LANG}/followup"), expect=200)
            token = (hidden_fields(login.text, f"/{LANG}/followup") or {}).get("csrf") if login else None
            if token is None:
                continue
            if not await t.time(
                "follow-up: reply-code login",
                client.post(f"/{LANG}/followup", data={"reply_code": code, "csrf": token}),
                expect=303,
            ):
                continue
            mailbox = await t.time("follow-up: mailbox", client.get(f"/{LANG}/mailbox"), expect=200)
            token = (
                (hidden_fields(mailbox.text, f"/{LANG}/mailbox/reply") or {}).get("csrf") if mailbox else None
            )
            if token is None:
                continue
            await t.time(
                "follow-up: answer",
                client.post(
                    f"/{LANG}/mailbox/reply",
                    data={"message": f"Ett tillägg, nummer {n}.", "csrf": token},
                    files=multipart_file(rng, False),
                ),
                expect=303,
            )


async def officer(base_url: str, who: dict[str, Any], rng: random.Random, rounds: int, t: Timings) -> None:
    """Log in once, then `rounds` times: an inbox page, a tip from it, and every other time a reply."""
    async with new_client(base_url) as client:
        page = await t.time("staff: login form", client.get("/staff/login"), expect=200)
        token = (hidden_fields(page.text, "/staff/login") or {}).get("csrf") if page else None
        if token is None:
            return
        fields = {
            "username": who["username"],
            "passphrase": who["password"],
            "code": pyotp.TOTP(who["totp_secret"]).now(),
            "csrf": token,
        }
        if not await t.time("staff: login", client.post("/staff/login", data=fields), expect=303):
            return
        pages = 1
        for n in range(rounds):
            number = 1 if rng.random() < 0.7 else rng.randint(1, pages)
            inbox = await t.time("staff: inbox page", client.get(f"/staff/?page={number}"), expect=200)
            if inbox is None:
                continue
            pages = max([pages, *(int(p) for p in _page_numbers(inbox.text))])
            tip_ids = sorted(set(_tip_ids(inbox.text)))
            if not tip_ids:
                await asyncio.sleep(0.5)  # nothing routed to these desks yet: the residents are still sending
                continue
            tip_id = rng.choice(tip_ids)
            opened = await t.time("staff: open tip", client.get(f"/staff/tips/{tip_id}"), expect=200)
            token = (
                (hidden_fields(opened.text, f"/staff/tips/{tip_id}/reply") or {}).get("csrf")
                if opened
                else None
            )
            if n % 2 == 1 and token:
                await t.time(
                    "staff: reply",
                    client.post(
                        f"/staff/tips/{tip_id}/reply",
                        data={"text": f"Tack, vi har läst det. ({n})", "csrf": token},
                    ),
                    expect=303,
                )


def _tip_ids(page: str) -> list[str]:
    return [part.split('"', 1)[0] for part in page.split('href="/staff/tips/')[1:]]


def _page_numbers(page: str) -> list[str]:
    return [part.split('"', 1)[0].split("&", 1)[0] for part in page.split("page=")[1:] if part[:1].isdigit()]


async def mixed_workload(
    base_url: str, accounts: dict[str, Any], args: argparse.Namespace, t: Timings
) -> None:
    master = random.Random(args.seed)
    staff = [a for a in accounts["accounts"] if a["desks"]]
    tasks = [
        resident(base_url, random.Random(master.getrandbits(64)), args.tips, t) for _ in range(args.residents)
    ]
    tasks += [officer(base_url, who, random.Random(master.getrandbits(64)), args.rounds, t) for who in staff]
    await asyncio.gather(*tasks)


async def ceiling_workload(base_url: str, users: int, t: Timings) -> None:
    async def user() -> None:
        async with new_client(base_url) as client:
            for _ in range(CEILING_REQUESTS_PER_USER):
                await t.time("GET / (ceiling)", client.get("/"), expect=200)

    await asyncio.gather(*(user() for _ in range(users)))


def measure(pids: list[int], database: str | None, work: Any) -> Run:
    timings = Timings()
    hwm_before = {pid: proc_status(pid).get("VmHWM", 0) for pid in pids}
    sampler = RssSampler(lambda: pids)
    sampler.start()
    with CpuWatch(pids, database) as cpu:
        asyncio.run(work(timings))
    peak = sampler.stop()
    return Run(
        wall=cpu.wall,
        timings=timings,
        peak_rss_sum=peak,
        worker_hwm=[max(hwm_before[p], proc_status(p).get("VmHWM", 0)) for p in pids[1:]],
        server_cpu=cpu.server,
        database_cpu=cpu.db,
        client_cpu=cpu.client,
        other_cpu=cpu.other,
    )


# --- the servers --------------------------------------------------------------------------------------------


@contextlib.contextmanager
def ceiling_server(workdir: Path) -> Any:
    """The one-route Starlette app under uvicorn, as `lykta serve` runs (h11, no access log, 2 workers)."""
    (workdir / "ceiling_app.py").write_text(CEILING_APP)
    port = free_port()
    code = (
        f"import uvicorn; uvicorn.run('ceiling_app:app', host='127.0.0.1', port={port}, workers={WORKERS}, "
        "http='h11', access_log=False, server_header=False, log_level='warning', timeout_keep_alive=5)"
    )
    env = {**os.environ, "PYTHONPATH": str(workdir)}
    process = subprocess.Popen([sys.executable, "-c", code], cwd=workdir, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if (
                    httpx.get(f"http://127.0.0.1:{port}/", timeout=2).text == "ok"
                    and len(server_pids(process.pid)) > WORKERS
                ):
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the ceiling app did not come up")
            time.sleep(0.1)
        time.sleep(1.0)  # both workers import before they accept
        yield f"http://127.0.0.1:{port}", server_pids(process.pid)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait()


def init_instance(env: dict[str, str], workdir: Path) -> dict[str, Any]:
    accounts = workdir / "demo-accounts.json"
    for args in (["init"], ["demo", "--accounts-json", str(accounts)]):
        done = subprocess.run([*lykta_command(), *args], env=env, cwd=workdir, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"lykta {args[0]} failed:\n{done.stdout}\n{done.stderr}")
    loaded: dict[str, Any] = json.loads(accounts.read_text())
    return loaded


# --- the report ---------------------------------------------------------------------------------------------


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f}"


def mib(size: int) -> str:
    return f"{size / MIB:.0f} MiB"


def failed_count(run: Run) -> int:
    return sum(len(f) for f in run.timings.failures.values())


def cpu_line(run: Run) -> str:
    share = run.other_cpu / run.wall if run.wall else 0.0
    flag = "  NOISY: someone else was using the machine" if share > NOISY_OTHER_CPU else ""
    return (
        f"CPU over {run.wall:.1f} s (% of one core): server {100 * run.server_cpu / run.wall:.0f}, "
        f"PostgreSQL {100 * run.database_cpu / run.wall:.0f}, "
        f"load generator {100 * run.client_cpu / run.wall:.0f}, other {100 * share:.0f}{flag}"
    )


def report(lykta: Run, ceilings: list[Run], args: argparse.Namespace) -> None:
    ceiling_rps = sum(c.requests / c.wall for c in ceilings) / len(ceilings)
    ceiling_p50 = sum(percentile(c.timings.seconds["GET / (ceiling)"], 0.5) for c in ceilings) / len(ceilings)
    ceiling_p99 = sum(percentile(c.timings.seconds["GET / (ceiling)"], 0.99) for c in ceilings) / len(
        ceilings
    )
    print()
    print(
        f"Mixed workload on PostgreSQL, lykta serve --workers {WORKERS}: {args.residents} residents x "
        f"{args.tips} tips (each followed up), {args.officers} officers x {args.rounds} rounds, "
        f"seed {args.seed}; {os.cpu_count()} cores"
    )
    print()
    header = (
        f"{'action':<30} {'count':>6} {'failed':>6} {'per s':>7} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'p50/ceiling':>12}"
    )
    print(header)
    print("-" * len(header))
    for action in sorted(lykta.timings.seconds):
        values = lykta.timings.seconds[action]
        failed = len(lykta.timings.failures.get(action, []))
        p50 = percentile(values, 0.5)
        print(
            f"{action:<30} {len(values):>6} {failed:>6} {len(values) / lykta.wall:>7.2f} {ms(p50)} "
            f"{ms(percentile(values, 0.99))} {p50 / ceiling_p50:>11.1f}x"
        )
    all_values = [v for values in lykta.timings.seconds.values() for v in values]
    print("-" * len(header))
    print(
        f"{'all requests':<30} {len(all_values):>6} {failed_count(lykta):>6} "
        f"{lykta.requests / lykta.wall:>7.2f} {ms(percentile(all_values, 0.5))} "
        f"{ms(percentile(all_values, 0.99))}"
    )
    for i, run in enumerate(ceilings):
        values = run.timings.seconds["GET / (ceiling)"]
        when = "before" if i == 0 else "after"
        print(
            f"{'ceiling ' + when:<30} {len(values):>6} {failed_count(run):>6} "
            f"{len(values) / run.wall:>7.0f} {ms(percentile(values, 0.5))} {ms(percentile(values, 0.99))}"
        )
    print()
    print(
        f"throughput: {lykta.requests / lykta.wall:.1f} requests/s mixed vs {ceiling_rps:.0f} requests/s "
        f"ceiling (ratio {lykta.requests / lykta.wall / ceiling_rps:.3f}); "
        f"ceiling p50 {ceiling_p50 * 1000:.1f} ms, p99 {ceiling_p99 * 1000:.1f} ms"
    )
    # CPU time per request holds steady on a busy machine, where wall-clock figures do not.
    lykta_cpu = (lykta.server_cpu + lykta.database_cpu) / max(1, lykta.requests)
    ceiling_cpu = sum(c.server_cpu / max(1, c.requests) for c in ceilings) / len(ceilings)
    print(
        f"server CPU per request (workers, and PostgreSQL for lykta): {lykta_cpu * 1000:.1f} ms mixed vs "
        f"{ceiling_cpu * 1000:.2f} ms ceiling (ratio {lykta_cpu / ceiling_cpu:.0f}x)"
    )
    # With the machine to itself, a CPU-bound server and its load generator share the cores: this is the
    # throughput the CPU time spent says the mix would reach, whatever else the machine was doing.
    cores = os.cpu_count() or 1
    lykta_bound = cores * lykta.requests / (lykta.server_cpu + lykta.database_cpu + lykta.client_cpu)
    ceiling_bound = sum(cores * c.requests / (c.server_cpu + c.client_cpu) for c in ceilings) / len(ceilings)
    print(
        f"CPU-bound throughput on {cores} idle cores: {lykta_bound:.0f} requests/s mixed vs "
        f"{ceiling_bound:.0f} requests/s ceiling (ratio (CPU) {lykta_bound / ceiling_bound:.3f})"
    )
    failures = {a: sorted(set(f)) for a, f in lykta.timings.failures.items() if f}
    if failures:
        print(f"failures: {failures}")
    print()
    print("memory (peak RSS, from /proc):")
    print(
        f"  lykta:   workers VmHWM {', '.join(mib(h) for h in lykta.worker_hwm)}; supervisor + workers "
        f"largest sampled sum {mib(lykta.peak_rss_sum)}"
    )
    for i, run in enumerate(ceilings):
        print(
            f"  ceiling ({'before' if i == 0 else 'after'}): workers VmHWM "
            f"{', '.join(mib(h) for h in run.worker_hwm)}; largest sampled sum {mib(run.peak_rss_sum)}"
        )
    ratio = lykta.peak_rss_sum / max(c.peak_rss_sum for c in ceilings)
    print(f"  ratio (largest sums): {ratio:.1f}x")
    print()
    print(f"lykta:   {cpu_line(lykta)}")
    for i, run in enumerate(ceilings):
        print(f"ceiling {'before' if i == 0 else 'after'}: {cpu_line(run)}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--residents", type=int, default=20, help="virtual residents")
    parser.add_argument(
        "--tips", type=int, default=3, help="tips each resident sends (each followed up once)"
    )
    parser.add_argument("--rounds", type=int, default=12, help="inbox rounds of each officer")
    parser.add_argument("--seed", type=int, default=1, help="every choice of the workload comes from it")
    parser.add_argument("--pg-admin-url", default=PG_ADMIN_URL, help="where to create the bench database")
    args = parser.parse_args()
    started = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix="lykta-loadbench-"))
    try:
        with postgres_database(args.pg_admin_url) as (url, name):
            env = server_env(workdir / "data", url)
            # Every follow-up is a reply-code login: the global guessing limit (30 a minute) is a guard, not
            # the work measured here.
            env["LYKTA_FOLLOWUP_ATTEMPTS_PER_MINUTE"] = "100000"
            log("lykta init and lykta demo (real Argon2id parameters)")
            accounts = init_instance(env, workdir)
            args.officers = sum(1 for a in accounts["accounts"] if a["desks"])
            users = args.residents + args.officers
            ceilings = []
            log("ceiling, before")
            with ceiling_server(workdir) as (base_url, pids):
                ceilings.append(measure(pids, None, lambda t: ceiling_workload(base_url, users, t)))
            server = Server(env, workdir, database_name=name)
            log("starting lykta serve --workers 2")
            server.start()
            try:
                assert server.process is not None
                pids = server_pids(server.process.pid)
                log(f"mixed workload: {users} virtual users")
                lykta = measure(pids, name, lambda t: mixed_workload(server.base_url, accounts, args, t))
                exception = server.first_exception()
            finally:
                server.stop()
            log("ceiling, after")
            with ceiling_server(workdir) as (base_url, pids):
                ceilings.append(measure(pids, None, lambda t: ceiling_workload(base_url, users, t)))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    report(lykta, ceilings, args)
    if exception:
        print(f"\nthe server's log has a traceback: {exception}")
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(
        f"\ntotal run time: {time.perf_counter() - started:.0f} s (this process: {usage.ru_utime:.0f} s CPU)"
    )


if __name__ == "__main__":
    main()

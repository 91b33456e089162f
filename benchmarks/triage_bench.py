"""Benchmark of the back office with a large database: an inbox page, opening a tip, and a staff login.

    python benchmarks/triage_bench.py                              # 100 000 tips, SQLite and PostgreSQL
    python benchmarks/triage_bench.py --tips 10000 --backend sqlite

For each backend (SQLite in a temporary data directory; PostgreSQL in a fresh database
`lykta_triagebench_<hex>`, dropped at the end unless --keep) the script migrates the database, seeds the
demo network with `portal.demo.seed` at the real KEYWRAP_PARAMS_V1 (so logins are measured at the pinned
parameters), and then inserts N tips spread over the demo routing table: weighted categories and
municipalities, two years of arrival times, statuses that follow a tip's age, assignments, read markers,
labels, conversations, and a valid audit chain. Every tip is a real age envelope sealed with kind "tip"
and subject = tip id to its routed desks and a tipster key. The tipster key is derived once with
`crypto.derive_mailbox` and its public key reused for every tip (100 000 derivations at
REPLY_CODE_PARAMS_V1 would take hours); each tip still gets its own random 32-byte mailbox id.

Then, in this process (no HTTP): (a) an inbox page for the officer with the most tips, over a range of
pages, filters and sorts: `portal.triage.services.inbox`, the staff template rendered through the staff
renderer as `portal.triage.views.inbox` does, and the whole view function called with a request carrying
a session cookie; (b) opening and decrypting different tips with `open_tip` and the officer's unlocked desk
keys (committed: the audit log grows by one entry per opening, reported), and the whole tip view; (c)
`authenticate` at KEYWRAP_PARAMS_V1 with a correct passphrase and a fresh TOTP step each time, with a wrong
passphrase, and for an unknown user. Last, (d) the same over HTTP once: `lykta serve` on a free loopback
port, a real login, then GET /staff/ and GET /staff/tips/<id>.

It prints, it does not assert (STYLE rule 11), and it is not part of the test run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime
import json
import math
import os
import platform
import random
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import types
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any, cast
from urllib.parse import parse_qsl, urlencode

import httpx
import pyotp
from sqlalchemy import Engine, event, func, insert, text, update
from sqlmodel import Session, SQLModel, col, select
from starlette.applications import Starlette
from starlette.requests import Request

import crypto
from portal import csrf, db
from portal.accounts import login as staff_login
from portal.accounts.models import StaffAccount
from portal.app import build_services, create_staff_app
from portal.audit import log as audit
from portal.audit.models import AuditEntry, AuditHead
from portal.demo import seed
from portal.keyring.services import unlock_desk_keyring
from portal.network import services as network
from portal.network.catalogue import CATEGORIES, DEMO_ACCOUNTS
from portal.network.models import Desk, Municipality, Route
from portal.settings import Settings, load_settings, write_secrets_file
from portal.submission import services as tips
from portal.submission.models import INBOX_COPIES, Tip, TipRecipient
from portal.triage import services as triage
from portal.triage import views
from portal.triage.web import SESSION_COOKIE, SESSION_KIND, Staff, render_staff
from portal.web import Services

sys.path.insert(0, str(Path(__file__).resolve().parent))
from submit_bench import machine_busy_seconds, postgres_backends, proc_cpu_seconds  # a sibling script

DEFAULT_TIPS = 100_000
BATCH = 1_000  # tips per insert transaction and per sealing task
RUNS = 200  # per inbox scenario, and tips opened
LOGIN_RUNS = 5
HTTP_RUNS = 100
AIM_INBOX = 0.050
AIM_OPEN = 0.030
SPREAD = datetime.timedelta(days=730)
PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DB_PREFIX = "lykta_triagebench_"
MS = 1000.0

# How tips spread (made up, but shaped like the pilot's expectations): by category...
CATEGORY_WEIGHTS = {
    "drugs": 16, "weapons": 5, "violence": 10, "extortion": 4, "money-laundering": 3, "income-support": 9,
    "assistance": 4, "care-providers": 3, "state-benefits": 6, "population-register": 8, "environment": 5,
    "building": 4, "labour": 6, "tax": 5, "corruption": 2, "licences": 4, "other": 8,
}  # fmt: skip
# ... by municipality, roughly by population (thousands) ...
MUNICIPALITY_WEIGHTS = {
    "vasteras": 160, "eskilstuna": 107, "sodertalje": 101, "enkoping": 47, "strangnas": 38, "nykvarn": 11,
}  # fmt: skip
# ... and by the language the tipster wrote in.
LANGUAGE_WEIGHTS = {
    "sv": 70, "en": 8, "ar": 6, "fi": 3, "so": 3, "fa": 3, "pl": 3, "ti": 2, "syr": 1, "fa-AF": 1,
}  # fmt: skip
CONTACT_SHARE = 0.15
PHONE_SHARE = 0.03
CONVERSATION_SHARE = 0.2
LABEL_SHARE = 0.05
ACKNOWLEDGEMENT_TEXT = "Tack för ditt tips. Vi har tagit emot det och läser det så snart vi kan."

_SENTENCES = (
    "Det säljs narkotika vid busshållplatsen vid torget nästan varje kväll.",
    "En svart bil med utländska skyltar står ofta parkerad utanför porten.",
    "Flera unga killar verkar springa ärenden åt några äldre män i området.",
    "Jag har sett samma personer lämna små paket till bilar som stannar kort.",
    "Det bor minst tolv personer i en trea, men bara två står på dörren.",
    "Företaget anlitar folk utan anställningsavtal och betalar kontant.",
    "Någon har dumpat byggavfall och oljefat i skogen bakom industriområdet.",
    "Assistansbolaget rapporterar timmar som aldrig utförs, enligt personalen.",
    "Restaurangen serverar alkohol långt efter stängning och till minderåriga.",
    "Det förekommer hot mot butiksägare som ska betala för 'beskydd'.",
    "Jag vet inte exakt vem det är, men det har pågått sedan i våras.",
    "Det luktar starkt av kemikalier på kvällarna och det kommer lastbilar sent.",
)
_WHEN = ("Varje kväll efter 22", "Helger, oftast på eftermiddagen", "Sedan ungefär ett halvår", "Igår kväll")
_WHERE = ("Busshållplatsen vid torget", "Industriområdet norr om stan", "Gården bakom skolan", "Centrum")
_WHO = ("Två personer i en svart bil", "En man i 40-årsåldern", "Vet inte", "Ägaren till firman")
_CONTACTS = ("Ring mig på kvällar: 070-000 00 00", "tipsare@example.org", "Hellre via brevlådan här")
_REPLIES = (
    "Tack för ditt tips. Kan du berätta mer om när det brukar hända?",
    "Vi har läst ditt tips och tittar på det.",
    "Har du sett bilens registreringsnummer?",
)
_TIPSTER_MESSAGES = (
    "Det hände igen i går kväll, samma bil.",
    "Nu har de börjat vara där på morgonen också.",
    "Jag såg inte numret, men bilen är en svart kombi.",
)


def log(message: str) -> None:
    print(f"  .. {message}", file=sys.stderr, flush=True)


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(fraction * len(ordered))))
    return ordered[rank - 1]


def p50_p99(values: Sequence[float]) -> str:
    return f"{percentile(values, 0.5) * MS:.1f} / {percentile(values, 0.99) * MS:.1f}"


# --- who else used the machine ------------------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            for child in (task / "children").read_text().split():
                found += [int(child), *_children(int(child))]
    return found


@dataclasses.dataclass
class Noise:
    """What the rest of the machine did while a section ran: other processes' CPU, in cores."""

    other_cores: float
    load_average: float

    def describe(self) -> str:
        cores = os.cpu_count() or 1
        flag = "  NOISY: the figures are inflated" if self.other_cores > 0.25 * cores else ""
        return (
            f"[other processes used {self.other_cores:.2f} of {cores} cores meanwhile; "
            f"1-min load average {self.load_average:.1f}]{flag}"
        )


class CpuWatch:
    """Measures the CPU the rest of the machine used during a `with` block: everything busy, less this
    process, its children, the PostgreSQL backends of the benchmark's database and the HTTP server."""

    def __init__(self, database: str | None) -> None:
        self.database = database
        self.noise: dict[str, Noise] = {}

    def _ours(self) -> dict[int, float]:
        pids = [os.getpid(), *_children(os.getpid())]
        if self.database:
            pids += postgres_backends(self.database)
        return {pid: proc_cpu_seconds(pid) for pid in set(pids)}

    @contextlib.contextmanager
    def section(self, name: str) -> Iterator[None]:
        busy, ours, started = machine_busy_seconds(), self._ours(), time.perf_counter()
        try:
            yield
        finally:
            wall = time.perf_counter() - started
            ours_after = self._ours()
            used = sum(cpu - ours.get(pid, 0.0) for pid, cpu in ours_after.items())
            other = max(0.0, machine_busy_seconds() - busy - used)
            self.noise[name] = Noise(other / wall if wall > 0 else 0.0, os.getloadavg()[0])


def weighted(rng: random.Random, weights: dict[str, int]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


# --- the demo network, as seeded ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Network:
    municipality_ids: dict[str, int]
    routes: dict[tuple[int, str], tuple[int, ...]]  # (municipality id, category) -> primary desks
    desk_keys: dict[int, str]  # desk id -> public key
    desk_codes: dict[int, str]
    members: dict[int, tuple[int, ...]]  # desk id -> staff ids of demo accounts holding it
    auto_acknowledge: frozenset[int]


def read_network(session: Session) -> Network:
    municipality_ids = {m.code: m.id for m in session.exec(select(Municipality)) if m.id is not None}
    routes: dict[tuple[int, str], list[int]] = {}
    for route in session.exec(select(Route).where(col(Route.primary)).order_by(col(Route.id))):
        routes.setdefault((route.municipality_id, route.category), []).append(route.desk_id)
    desks = [d for d in session.exec(select(Desk)) if d.id is not None]
    accounts = {a.username: a.id for a in session.exec(select(StaffAccount)) if a.id is not None}
    members: dict[int, list[int]] = {}
    by_code = {d.code: d.id for d in desks}
    for spec in DEMO_ACCOUNTS:
        for code in spec.desks:
            members.setdefault(by_code[code], []).append(accounts[spec.username])  # type: ignore[arg-type]
    return Network(
        municipality_ids=municipality_ids,  # type: ignore[arg-type]
        routes={key: tuple(value) for key, value in routes.items()},
        desk_keys={d.id: d.public_key for d in desks},  # type: ignore[misc]
        desk_codes={d.id: d.code for d in desks},  # type: ignore[misc]
        members={key: tuple(value) for key, value in members.items()},
        auto_acknowledge=frozenset(d.id for d in desks if d.auto_acknowledge),  # type: ignore[misc]
    )


# --- planning the tips (no crypto) --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class PlannedMessage:
    id: str
    author: str  # tipster or desk
    desk_id: int | None
    actor: str  # for the audit entry
    created_at: datetime.datetime
    text: str


@dataclasses.dataclass(frozen=True)
class PlannedTip:
    id: str
    case_number: str
    created_at: datetime.datetime
    municipality_id: int
    category: str
    language: str
    status: str
    outcome: str | None
    desk_ids: tuple[int, ...]
    answers: bytes
    contact: str
    taken_by_phone: bool
    assignee_id: int | None
    acknowledged_at: datetime.datetime | None
    closed_at: datetime.datetime | None
    messages: tuple[PlannedMessage, ...]
    readers: tuple[tuple[int, datetime.datetime], ...]  # (staff id, read at)
    labels: tuple[str, ...]
    status_actor: str | None  # who set the status (an audit entry), if a demo account could have

    @property
    def last_tipster_activity_at(self) -> datetime.datetime:
        return max([self.created_at, *(m.created_at for m in self.messages if m.author == "tipster")])


def _status_for_age(rng: random.Random, age: datetime.timedelta) -> str:
    if age < tips.ACKNOWLEDGE_WITHIN:
        weights = {"new": 70, "acknowledged": 20, "in-progress": 10, "closed": 0}
    elif age < tips.FEEDBACK_WITHIN:
        weights = {"new": 5, "acknowledged": 20, "in-progress": 45, "closed": 30}
    else:  # older than the feedback deadline: mostly closed; the rest are overdue
        weights = {"new": 1, "acknowledged": 2, "in-progress": 9, "closed": 88}
    return weighted(rng, weights)


def _between(rng: random.Random, start: datetime.datetime, end: datetime.datetime) -> datetime.datetime:
    return start + (end - start) * rng.random()


def plan_tip(
    rng: random.Random,
    net: Network,
    created_at: datetime.datetime,
    case_numbers: set[str],
    now: datetime.datetime,
) -> PlannedTip:
    while True:
        municipality = weighted(rng, MUNICIPALITY_WEIGHTS)
        category = weighted(rng, CATEGORY_WEIGHTS)
        desk_ids = net.routes.get((net.municipality_ids[municipality], category), ())
        if desk_ids:
            break
    while (case_number := tips.new_case_number()) in case_numbers:  # 1e5 of 24^8: collisions do happen
        pass
    case_numbers.add(case_number)
    tip_id = tips.new_id()
    status = _status_for_age(rng, now - created_at)
    auto = next((d for d in desk_ids if d in net.auto_acknowledge), None)
    if auto is not None and status == "new":
        status = "acknowledged"
    members = sorted({m for d in desk_ids for m in net.members.get(d, ())})
    acknowledged_at = None
    if auto is not None:
        acknowledged_at = created_at
    elif status != "new":
        acknowledged_at = min(now, created_at + datetime.timedelta(days=rng.uniform(0.05, 9)))
    closed_at = None
    if status == "closed":
        closed_at = min(now, created_at + datetime.timedelta(days=rng.uniform(10, 120)))
    end = closed_at or now
    messages: list[PlannedMessage] = []
    if auto is not None:
        messages.append(
            PlannedMessage(tips.new_id(), "desk", auto, "system", created_at, ACKNOWLEDGEMENT_TEXT)
        )
    if acknowledged_at is not None and rng.random() < CONVERSATION_SHARE:
        moment = acknowledged_at
        desk_turn = bool(members)
        for _ in range(rng.randint(1, 4)):
            moment = _between(rng, moment, end)
            if desk_turn:
                desk_id = next(d for d in desk_ids if net.members.get(d))
                actor = f"staff:{rng.choice(net.members[desk_id])}"
                messages.append(
                    PlannedMessage(tips.new_id(), "desk", desk_id, actor, moment, rng.choice(_REPLIES))
                )
            else:
                text_ = rng.choice(_TIPSTER_MESSAGES)
                messages.append(PlannedMessage(tips.new_id(), "tipster", None, "tipster", moment, text_))
            desk_turn = bool(members) and not desk_turn
    elif status == "new" and rng.random() < 0.1:
        moment = _between(rng, created_at, now)
        messages.append(
            PlannedMessage(tips.new_id(), "tipster", None, "tipster", moment, rng.choice(_TIPSTER_MESSAGES))
        )
    last_activity = max([created_at, *(m.created_at for m in messages if m.author == "tipster")])
    readers = []
    for member in members:
        if rng.random() < (0.85 if status != "new" else 0.2):
            readers.append((member, min(now, last_activity + datetime.timedelta(hours=rng.uniform(0.1, 48)))))
    answers = {
        "what": " ".join(rng.sample(_SENTENCES, rng.randint(1, 6))),
        "when": rng.choice(_WHEN),
        "where": rng.choice(_WHERE),
        "how_known": rng.choice(("saw", "heard", "other")),
        "who": rng.choice(_WHO),
    }
    return PlannedTip(
        id=tip_id,
        case_number=case_number,
        created_at=created_at,
        municipality_id=net.municipality_ids[municipality],
        category=category,
        language=weighted(rng, LANGUAGE_WEIGHTS),
        status=status,
        outcome=rng.choice(triage.OUTCOMES) if status == "closed" else None,
        desk_ids=desk_ids,
        answers=json.dumps(answers, ensure_ascii=False).encode("utf-8"),
        contact=rng.choice(_CONTACTS) if rng.random() < CONTACT_SHARE else "",
        taken_by_phone=rng.random() < PHONE_SHARE,
        assignee_id=rng.choice(members) if members and status != "new" and rng.random() < 0.6 else None,
        acknowledged_at=acknowledged_at,
        closed_at=closed_at,
        messages=tuple(sorted(messages, key=lambda m: m.created_at)),
        readers=tuple(readers),
        labels=tuple(rng.sample(sorted(triage.TIP_LABELS), rng.randint(1, 2)))
        if rng.random() < LABEL_SHARE
        else (),
        status_actor=f"staff:{rng.choice(members)}" if members and status != "new" else None,
    )


# --- sealing (in worker processes) --------------------------------------------------------------------------

_worker_desks: dict[int, crypto.X25519Recipient] = {}
_worker_tipster: list[crypto.X25519Recipient] = []


def _init_sealer(desk_keys: dict[int, str], tipster_key: str) -> None:
    _worker_desks.update({d: crypto.X25519Recipient.parse(k) for d, k in desk_keys.items()})
    _worker_tipster.append(crypto.X25519Recipient.parse(tipster_key))


def seal_batch(plans: list[PlannedTip]) -> list[tuple[bytes, bytes | None, list[bytes]]]:
    """Each tip's envelopes, exactly as store_tip and store_message seal them: answers, contact, messages."""
    sealed = []
    for plan in plans:
        recipients = [_worker_desks[d] for d in plan.desk_ids] + _worker_tipster
        answers = crypto.seal(plan.answers, kind=tips.TIP_KIND, subject=plan.id, recipients=recipients)
        contact = (
            crypto.seal(plan.contact.encode(), kind=tips.CONTACT_KIND, subject=plan.id, recipients=recipients)
            if plan.contact
            else None
        )
        bodies = [
            crypto.seal(
                m.text.encode("utf-8"),
                kind=tips.MESSAGE_KIND,
                subject=tips.message_subject(plan.id, m.id),
                recipients=recipients,
            )
            for m in plan.messages
        ]
        sealed.append((answers, contact, bodies))
    return sealed


# --- inserting ----------------------------------------------------------------------------------------------


class AuditChain:
    """Audit rows appended after the current head, hashed exactly as portal.audit.log.record does."""

    def __init__(self, seq: int, head: bytes) -> None:
        self.seq, self.hash = seq, head

    def entry(
        self,
        *,
        created_at: datetime.datetime,
        actor: str,
        action: str,
        tip_id: str,
        desk_id: int | None = None,
        detail: dict[str, object] | None = None,
    ) -> dict[str, Any]:
        row: dict[str, Any] = {
            "seq": self.seq + 1,
            "created_at": created_at,
            "actor": actor,
            "action": action,
            "tip_id": tip_id,
            "desk_id": desk_id,
            "detail": dict(detail or {}),
            "prev_hash": self.hash,
        }
        # entry_hash reads attributes only; a plain namespace is 20x quicker to build than an AuditEntry.
        row["hash"] = audit.entry_hash(cast(AuditEntry, types.SimpleNamespace(**row)))
        self.seq, self.hash = row["seq"], row["hash"]
        return row


@dataclasses.dataclass
class SeedCounts:
    tips: int = 0
    envelopes: int = 0
    envelope_bytes: int = 0
    messages: int = 0
    contacts: int = 0
    audit_entries: int = 0
    reads: int = 0
    statuses: Counter[str] = dataclasses.field(default_factory=Counter)


def table(name: str) -> Any:
    return SQLModel.metadata.tables[name]


def insert_batch(
    engine: Engine,
    plans: list[PlannedTip],
    sealed: list[tuple[bytes, bytes | None, list[bytes]]],
    chain: AuditChain,
    kdf: str,
    tipster_key: str,
    counts: SeedCounts,
) -> None:
    rows: dict[str, list[dict[str, Any]]] = {
        n: [] for n in ("tip", "tiprecipient", "message", "tipread", "tiplabel", "auditentry")
    }
    for plan, (answers, contact, bodies) in zip(plans, sealed, strict=True):
        rows["tip"].append(
            {
                "id": plan.id,
                "case_number": plan.case_number,
                "created_at": plan.created_at,
                "municipality_id": plan.municipality_id,
                "category": plan.category,
                "language": plan.language,
                "status": plan.status,
                "outcome": plan.outcome,
                "mailbox_id": secrets.token_bytes(32),
                "reply_code_kdf": kdf,
                "tipster_public_key": tipster_key,
                "answers": answers,
                "contact": contact,
                "taken_by_phone": plan.taken_by_phone,
                "assignee_id": plan.assignee_id,
                "acknowledged_at": plan.acknowledged_at,
                "closed_at": plan.closed_at,
                "last_tipster_activity_at": plan.last_tipster_activity_at,
                "acknowledge_by": plan.created_at + tips.ACKNOWLEDGE_WITHIN,
                "feedback_by": plan.created_at + tips.FEEDBACK_WITHIN,
            }
        )
        tip_row = rows["tip"][-1]
        copies = {column: tip_row[source] for column, source in INBOX_COPIES.items()}  # as store_tip does
        rows["tiprecipient"] += [
            {"tip_id": plan.id, "desk_id": d, "reason": "routing", "added_at": plan.created_at, **copies}
            for d in plan.desk_ids
        ]
        rows["auditentry"].append(
            chain.entry(
                created_at=plan.created_at,
                actor="tipster",
                action="tip.received",
                tip_id=plan.id,
                detail={"files": 0},
            )
        )
        for message, body in zip(plan.messages, bodies, strict=True):
            rows["message"].append(
                {
                    "id": message.id,
                    "tip_id": plan.id,
                    "author": message.author,
                    "desk_id": message.desk_id,
                    "created_at": message.created_at,
                    "body": body,
                }
            )
            if message.actor == "system":
                action, detail = "tip.auto-acknowledged", None
            elif message.author == "tipster":
                action, detail = "tip.tipster-message", {"files": 0}
            else:
                action, detail = "tip.replied", None
            rows["auditentry"].append(
                chain.entry(
                    created_at=message.created_at,
                    actor=message.actor,
                    action=action,
                    tip_id=plan.id,
                    desk_id=message.desk_id,
                    detail=detail,
                )
            )
        if plan.status_actor is not None:
            rows["auditentry"].append(
                chain.entry(
                    created_at=plan.closed_at or plan.acknowledged_at or plan.created_at,
                    actor=plan.status_actor,
                    action="tip.status",
                    tip_id=plan.id,
                    detail={"status": plan.status, "outcome": plan.outcome},
                )
            )
        rows["tipread"] += [{"tip_id": plan.id, "staff_id": s, "read_at": at} for s, at in plan.readers]
        rows["tiplabel"] += [{"tip_id": plan.id, "label": label} for label in plan.labels]
        counts.tips += 1
        counts.envelopes += 1 + (contact is not None) + len(bodies)
        counts.envelope_bytes += len(answers) + len(contact or b"") + sum(map(len, bodies))
        counts.messages += len(bodies)
        counts.contacts += contact is not None
        counts.reads += len(plan.readers)
        counts.statuses[plan.status] += 1
    counts.audit_entries += len(rows["auditentry"])
    with engine.begin() as conn:
        for name, values in rows.items():  # in foreign-key order
            if values:
                conn.execute(insert(table(name)), values)
        conn.execute(
            update(table("audithead"))
            .where(table("audithead").c.id == 1)
            .values(seq=chain.seq, hash=chain.hash)
        )


@dataclasses.dataclass
class Seeded:
    accounts: dict[str, Any]
    seconds_demo: float
    seconds_tipster_key: float
    seconds_tips: float
    seconds_analyze: float
    seconds_verify: float
    audit_verdict: audit.Verdict
    counts: SeedCounts
    size_bytes: int


def seed_database(
    backend: str, settings: Settings, engine: Engine, n_tips: int, rng: random.Random
) -> Seeded:
    started = time.perf_counter()
    with db.session_scope(engine) as session:
        accounts = seed(session, signing_key=settings.signing_key, keywrap_params=crypto.KEYWRAP_PARAMS_V1)
    seconds_demo = time.perf_counter() - started
    log(f"{backend}: demo network seeded in {seconds_demo:.1f} s; deriving one tipster key")

    started = time.perf_counter()
    keys = crypto.derive_mailbox(
        crypto.ReplyCode.generate(),
        instance_salt=settings.secrets.instance_salt,
        pepper=settings.pepper,
        params=crypto.REPLY_CODE_PARAMS_V1,
    )
    tipster_key = str(keys.tipster_identity.recipient)
    seconds_tipster_key = time.perf_counter() - started

    started = time.perf_counter()
    with db.read_session(engine) as session:
        net = read_network(session)
        head = session.get(AuditHead, 1)
        assert head is not None
        chain = AuditChain(head.seq, head.hash)
    now = db.utcnow()
    arrivals = sorted(now - SPREAD * rng.random() for _ in range(n_tips))
    case_numbers: set[str] = set()
    plans = [plan_tip(rng, net, at, case_numbers, now) for at in arrivals]
    batches = [plans[i : i + BATCH] for i in range(0, len(plans), BATCH)]
    counts = SeedCounts()
    workers = max(1, os.cpu_count() or 1)
    log(
        f"{backend}: sealing and inserting {n_tips} tips in {len(batches)} batches, "
        f"{workers} sealing processes"
    )
    with ProcessPoolExecutor(
        workers,
        mp_context=get_context("spawn"),
        initializer=_init_sealer,
        initargs=(net.desk_keys, tipster_key),
    ) as pool:
        for i, (batch, sealed) in enumerate(zip(batches, pool.map(seal_batch, batches), strict=True)):
            insert_batch(engine, batch, sealed, chain, crypto.REPLY_CODE_PARAMS_V1.name, tipster_key, counts)
            if (i + 1) % 10 == 0:
                log(f"{backend}: {counts.tips} tips in {time.perf_counter() - started:.0f} s")
    seconds_tips = time.perf_counter() - started

    started = time.perf_counter()
    # Autovacuum would do this within a minute or so; do it now, deterministically. Since PostgreSQL 13 it
    # vacuums insert-only tables too, which sets the visibility map: index-only scans then skip the heap.
    if backend == "postgresql":
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM (ANALYZE)")
    seconds_analyze = time.perf_counter() - started

    log(f"{backend}: verifying the audit chain")
    started = time.perf_counter()
    with db.read_session(engine) as session:
        verdict = audit.verify(session)
    seconds_verify = time.perf_counter() - started
    return Seeded(
        accounts=accounts,
        seconds_demo=seconds_demo,
        seconds_tipster_key=seconds_tipster_key,
        seconds_tips=seconds_tips,
        seconds_analyze=seconds_analyze,
        seconds_verify=seconds_verify,
        audit_verdict=verdict,
        counts=counts,
        size_bytes=database_size(backend, engine, settings),
    )


def database_size(backend: str, engine: Engine, settings: Settings) -> int:
    if backend == "postgresql":
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one())
    path = Path(settings.database_url.removeprefix("sqlite:///"))
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


# --- in-process requests ------------------------------------------------------------------------------------


@dataclasses.dataclass
class Context:
    backend: str
    settings: Settings
    services: Services
    app: Starlette
    engine: Engine
    staff: Staff
    cookies: dict[str, str]
    loop: asyncio.AbstractEventLoop

    def request(self, path: str, query: str = "", path_params: dict[str, str] | None = None) -> Request:
        """A GET request as the staff app would hand it to a view, with the officer's cookies."""
        cookie = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        return Request(
            {
                "type": "http",
                "asgi": {"version": "3.0"},
                "http_version": "1.1",
                "method": "GET",
                "scheme": "http",
                "server": ("127.0.0.1", 8000),
                "client": ("127.0.0.1", 50000),
                "root_path": "",
                "path": path,
                "raw_path": path.encode(),
                "query_string": query.encode(),
                "headers": [
                    (b"host", b"127.0.0.1:8000"),
                    (b"cookie", cookie.encode()),
                    (b"accept-language", b"sv-SE,sv;q=0.9"),
                ],
                "app": self.app,
                "path_params": path_params or {},
            }
        )


def officer_for_busiest_desk(
    engine: Engine, accounts: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, int]]:
    """The demo officer (or desk lead) whose desks hold the most tips, and the tips per desk code."""
    with db.read_session(engine) as session:
        per_desk = dict(
            session.exec(
                select(Desk.code, func.count())
                .join(TipRecipient, col(TipRecipient.desk_id) == col(Desk.id))
                .group_by(Desk.code)
            ).all()
        )
    candidates = [a for a in accounts["accounts"] if a["role"] in ("officer", "desk-lead") and a["desks"]]
    best = max(candidates, key=lambda a: sum(per_desk.get(d, 0) for d in a["desks"]))
    return best, per_desk


def totp_now(secret: str, now: float) -> str:
    return pyotp.TOTP(secret, interval=staff_login.TOTP_STEP_SECONDS).at(now)


@dataclasses.dataclass
class LoginTimes:
    correct: list[float]
    wrong_passphrase: list[float]
    unknown_user: list[float]
    identity: crypto.X25519Identity
    account: StaffAccount


def measure_login(engine: Engine, settings: Settings, who: dict[str, Any]) -> LoginTimes:
    """authenticate() at KEYWRAP_PARAMS_V1; each attempt in a transaction that is rolled back."""

    def attempt(username: str, passphrase: str, now: float) -> tuple[float, staff_login.StaffLogin | None]:
        with Session(engine, expire_on_commit=False) as session:
            started = time.perf_counter()
            result = staff_login.authenticate(
                session,
                username=username,
                passphrase=passphrase,
                totp_code=totp_now(who["totp_secret"], now),
                signing_key=settings.signing_key,
                keywrap_params=crypto.KEYWRAP_PARAMS_V1,
                now=now,
            )
            seconds = time.perf_counter() - started
            if result is not None:
                session.expunge(result.account)  # keep its loaded fields for the session started below
            session.rollback()
        return seconds, result

    base = time.time()
    step = staff_login.TOTP_STEP_SECONDS
    attempt("nobody.at.all", "warm-up", base)  # wraps the dummy blob once (an extra Argon2id run)
    correct, wrong, unknown = [], [], []
    login: staff_login.StaffLogin | None = None
    for i in range(LOGIN_RUNS):
        now = base + step * (i + 1)  # a later TOTP step every time: no attempt is a replay
        seconds, login = attempt(who["username"], who["password"], now)
        if login is None:
            raise RuntimeError("the demo officer could not log in: the benchmark is broken")
        correct.append(seconds)
        seconds, failed = attempt(who["username"], who["password"] + "x", now)
        assert failed is None
        wrong.append(seconds)
        seconds, failed = attempt("nobody.at.all", who["password"], now)
        assert failed is None
        unknown.append(seconds)
    assert login is not None
    return LoginTimes(correct, wrong, unknown, login.identity, login.account)


def start_session(ctx_services: Services, engine: Engine, login: LoginTimes) -> tuple[Staff, dict[str, str]]:
    """A staff session as the login view starts it; the desk keys unlocked as current_staff does."""
    assert login.account.id is not None
    with db.session_scope(engine) as session:
        cookie = ctx_services.sessions.start(
            session, kind=SESSION_KIND, subject=str(login.account.id), secret=login.identity.secret_bytes()
        )
        desk_keys = unlock_desk_keyring(session, staff_id=login.account.id, personal=login.identity)
    staff = Staff(account=login.account, personal=login.identity, desk_keys=desk_keys)
    return staff, {SESSION_COOKIE: cookie, csrf.COOKIE_NAME: csrf.CsrfTokens.new_cookie_value()}


# --- (a) the inbox ------------------------------------------------------------------------------------------


@dataclasses.dataclass
class InboxResult:
    label: str
    query: str
    rows: int
    total: int
    inbox: list[float]
    render: list[float]
    page: list[float]
    view: list[float]


def inbox_page(ctx: Context, query: str) -> tuple[float, float, float, triage.InboxPage]:
    """What views.inbox does once the staff member is known: inbox(), the page's other queries, the render.

    Returns the seconds of inbox() alone, of the render alone, and of everything together.
    """
    request = ctx.request("/staff/", query)
    staff = ctx.staff
    started = time.perf_counter()
    filters = triage.InboxFilter.from_query(request.query_params)
    with db.session_scope(ctx.engine) as session:
        page = triage.inbox(session, staff_id=staff.id, desk_ids=list(staff.desk_keys), filters=filters)
        queried = time.perf_counter()
        desks = list(session.exec(select(Desk).where(col(Desk.id).in_(list(staff.desk_keys) or [-1]))))
        municipalities = network.municipalities(session)
        waiting = views._waiting_for_grant(session, staff)
    rendering = time.perf_counter()
    response = render_staff(
        request,
        "staff/inbox.html",
        staff=staff,
        purposes=("logout",),
        page=page,
        filters=filters,
        desks=desks,
        municipalities=municipalities,
        categories=CATEGORIES,
        statuses=triage.STATUSES,
        now=db.utcnow(),
        waiting=waiting,
        request_query=lambda **changes: urlencode(
            {k: v for k, v in {**dict(request.query_params), **changes}.items() if v not in ("", None)}
        ),
    )
    done = time.perf_counter()
    assert response.status_code == 200
    return queried - started, done - rendering, done - started, page


def run_view(ctx: Context, request: Request, endpoint: Callable[[Request], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    response = ctx.loop.run_until_complete(endpoint(request))
    return time.perf_counter() - started, response


def inbox_scenarios(ctx: Context) -> list[tuple[str, str]]:
    """(label, query string) pairs: pages, each filter, each sort, and a combination."""
    staff = ctx.staff
    desk_ids = list(staff.desk_keys)
    with db.read_session(ctx.engine) as session:
        reachable = select(TipRecipient.tip_id).where(col(TipRecipient.desk_id).in_(desk_ids))
        by_category = session.exec(
            select(Tip.category, func.count()).where(col(Tip.id).in_(reachable)).group_by(Tip.category)
        ).all()
        by_municipality = session.exec(
            select(Municipality.code, func.count())
            .join(Tip, col(Tip.municipality_id) == col(Municipality.id))
            .where(col(Tip.id).in_(reachable))
            .group_by(Municipality.code)
        ).all()
        pages = triage.inbox(
            session, staff_id=staff.id, desk_ids=desk_ids, filters=triage.InboxFilter()
        ).pages
    category = max(by_category, key=lambda row: row[1])[0]
    # The smallest municipality the desk serves: a narrow filter, the kind an index should answer quickly.
    municipality = min(by_municipality, key=lambda row: row[1])[0]
    scenarios = [
        ("page 1, newest first", ""),
        (f"middle page ({max(1, pages // 2)} of {pages})", f"page={max(1, pages // 2)}"),
        ("last page", f"page={pages}"),
        ("status new", "status=new"),
        ("status in progress", "status=in-progress"),
        ("status closed, page 2", "status=closed&page=2"),
        (f"category ({category})", f"category={category}"),
        (f"municipality ({municipality})", f"municipality={municipality}"),
        ("assigned to me", "assignee=me"),
        ("acknowledgement overdue", "deadline=acknowledge-overdue"),
        ("feedback overdue", "deadline=feedback-overdue"),
        ("due within 2 days", "deadline=due-soon"),
        ("oldest first", "sort=oldest"),
        ("by acknowledge-by", "sort=acknowledge-by"),
        ("open, by feedback-by", "status=in-progress&sort=feedback-by"),
        ("combined filters", f"status=in-progress&category={category}&deadline=feedback-overdue&sort=oldest"),
    ]
    if len(desk_ids) > 1:
        scenarios.append(("one desk of mine", f"desk={desk_ids[0]}"))
    return scenarios


def measure_inbox(ctx: Context, runs: int) -> list[InboxResult]:
    results = []
    for label, query in inbox_scenarios(ctx):
        inbox_times, render_times, page_times, view_times = [], [], [], []
        request = ctx.request("/staff/", query)
        for _ in range(3):  # warm-up: compiled-statement caches, template compilation, page cache
            inbox_page(ctx, query)
            run_view(ctx, request, views.inbox)
        for _ in range(runs):
            inbox_s, render_s, page_s, page = inbox_page(ctx, query)
            inbox_times.append(inbox_s)
            render_times.append(render_s)
            page_times.append(page_s)
            view_s, response = run_view(ctx, request, views.inbox)
            view_times.append(view_s)
        assert response.status_code == 200, response.status_code
        if page.rows:
            assert page.rows[0].tip.case_number.encode() in response.body
        results.append(
            InboxResult(
                label, query, len(page.rows), page.total, inbox_times, render_times, page_times, view_times
            )
        )
        log(f"{ctx.backend}: inbox {label}: view p50 {percentile(view_times, 0.5) * MS:.1f} ms")
    return results


@dataclasses.dataclass(frozen=True)
class Statement:
    sql: str
    params: Any
    seconds: float


@contextlib.contextmanager
def capture_statements(engine: Engine) -> Iterator[list[Statement]]:
    captured: list[Statement] = []
    started: list[float] = []

    def before(_conn: Any, _cursor: Any, _statement: str, _params: Any, _context: Any, _many: bool) -> None:
        started.append(time.perf_counter())

    def after(_conn: Any, _cursor: Any, statement: str, params: Any, _context: Any, _many: bool) -> None:
        captured.append(Statement(statement, params, time.perf_counter() - started.pop()))

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    try:
        yield captured
    finally:
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "after_cursor_execute", after)


def statements_of_inbox(ctx: Context, query: str) -> list[Statement]:
    """The SELECTs inbox() sends for `query`, each with its time (median of 5 runs)."""
    runs = []
    filters = triage.InboxFilter.from_query(dict(parse_qsl(query)))
    for _ in range(5):
        with db.read_session(ctx.engine) as session, capture_statements(ctx.engine) as captured:
            triage.inbox(session, staff_id=ctx.staff.id, desk_ids=list(ctx.staff.desk_keys), filters=filters)
        runs.append([s for s in captured if s.sql.lstrip().upper().startswith("SELECT")])
    return [
        Statement(first.sql, first.params, statistics.median(r[i].seconds for r in runs))
        for i, first in enumerate(runs[0])
    ]


def explain(ctx: Context, statement: Statement) -> list[str]:
    prefix = "EXPLAIN (ANALYZE, BUFFERS) " if ctx.backend == "postgresql" else "EXPLAIN QUERY PLAN "
    with ctx.engine.connect() as conn:
        rows = conn.exec_driver_sql(prefix + statement.sql, statement.params).all()
        conn.rollback()
    if ctx.backend == "postgresql":
        return [str(row[0]) for row in rows]
    depth: dict[int, int] = {0: -1}
    lines = []
    for node, parent, _unused, detail in rows:
        depth[node] = depth.get(parent, -1) + 1
        lines.append("  " * depth[node] + str(detail))
    return lines


# --- (b) opening tips ---------------------------------------------------------------------------------------


@dataclasses.dataclass
class OpenResult:
    open_tip: list[float]
    with_commit: list[float]
    view: list[float]
    envelopes: list[int]
    audit_before: int
    audit_after: int


def audit_count(engine: Engine) -> int:
    with db.read_session(engine) as session:
        return int(session.exec(select(func.count()).select_from(AuditEntry)).one())


def measure_open(ctx: Context, runs: int, rng: random.Random) -> OpenResult:
    with db.read_session(ctx.engine) as session:
        reachable = list(
            session.exec(
                select(TipRecipient.tip_id)
                .where(col(TipRecipient.desk_id).in_(list(ctx.staff.desk_keys)))
                .distinct()
                .order_by(col(TipRecipient.tip_id))
            )
        )
    chosen = rng.sample(reachable, min(len(reachable), 2 * runs))
    for_open, for_view = chosen[: len(chosen) // 2], chosen[len(chosen) // 2 :]
    before = audit_count(ctx.engine)
    open_times, commit_times, view_times, envelopes = [], [], [], []
    for tip_id in for_open:
        started = time.perf_counter()
        with db.session_scope(ctx.engine) as session:
            opened = triage.open_tip(
                session,
                tip_id=tip_id,
                staff_id=ctx.staff.id,
                actor=ctx.staff.actor,
                desk_keys=ctx.staff.desk_keys,
            )
            open_times.append(time.perf_counter() - started)
        commit_times.append(time.perf_counter() - started)
        envelopes.append(1 + (opened.contact is not None) + len(opened.conversation) + len(opened.notes))
    for tip_id in for_view:
        seconds, response = run_view(
            ctx, ctx.request(f"/staff/tips/{tip_id}", "", {"tip_id": tip_id}), views.tip_view
        )
        assert response.status_code == 200, response.status_code
        view_times.append(seconds)
    return OpenResult(open_times, commit_times, view_times, envelopes, before, audit_count(ctx.engine))


# --- (d) over HTTP ------------------------------------------------------------------------------------------


def lykta_command() -> list[str]:
    script = Path(sys.executable).parent / "lykta"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from portal.cli import main; main()"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def lykta_serve(env: dict[str, str], workdir: Path) -> Iterator[str]:
    """`lykta serve` (one worker) on a free loopback port; yields its base URL; stopped on the way out."""
    port = free_port()
    log_path = workdir / "server.log"
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            [*lykta_command(), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            cwd=workdir,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"lykta serve exited:\n{log_path.read_text(errors='replace')[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base_url}/healthz", timeout=2).text == "ok":
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("lykta serve did not come up within 60 s")
            time.sleep(0.1)
        yield base_url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()  # this server's own process, by its id
            process.wait(timeout=10)


@dataclasses.dataclass
class HttpResult:
    login: float
    inbox: list[float]
    tip: list[float]


_CSRF_RE = r'<form[^>]*action="/staff/login".*?name="csrf" value="([^"]+)"'


def measure_http(ctx: Context, who: dict[str, Any], workdir: Path, tip_ids: list[str]) -> HttpResult:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LYKTA_")}
    env |= {"LYKTA_DATA_DIR": str(ctx.settings.data_dir), "LYKTA_DATABASE_URL": ctx.settings.database_url}
    with lykta_serve(env, workdir) as base_url, httpx.Client(base_url=base_url, timeout=30) as client:
        form = client.get("/staff/login")
        token = re.search(_CSRF_RE, form.text, re.S)
        assert token, "no login form"
        started = time.perf_counter()
        answer = client.post(
            "/staff/login",
            data={
                "username": who["username"],
                "passphrase": who["password"],
                "code": totp_now(who["totp_secret"], time.time()),
                "csrf": token.group(1),
            },
        )
        login = time.perf_counter() - started
        if answer.status_code != 303:
            raise RuntimeError(f"HTTP login failed ({answer.status_code}): the benchmark is broken")
        for _ in range(5):
            client.get("/staff/").raise_for_status()
        inbox_times, tip_times = [], []
        for _ in range(HTTP_RUNS):
            started = time.perf_counter()
            response = client.get("/staff/")
            inbox_times.append(time.perf_counter() - started)
            assert response.status_code == 200 and "/staff/tips/" in response.text
        for tip_id in tip_ids[:HTTP_RUNS]:
            started = time.perf_counter()
            response = client.get(f"/staff/tips/{tip_id}")
            tip_times.append(time.perf_counter() - started)
            assert response.status_code == 200
    return HttpResult(login, inbox_times, tip_times)


# --- one backend --------------------------------------------------------------------------------------------


@contextlib.contextmanager
def postgres_database(admin_url: str, *, keep: bool) -> Iterator[str]:
    """A new, empty database's URL, dropped on the way out unless `keep`."""
    name = f"{DB_PREFIX}{secrets.token_hex(4)}"
    admin = db.make_nullpool_engine(admin_url).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield admin_url.rsplit("/", 1)[0] + "/" + name
    finally:
        if keep:
            log(f"kept database {name}")
        else:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            log(f"dropped database {name}")
        admin.dispose()


@dataclasses.dataclass
class BackendResult:
    backend: str
    seeded: Seeded
    officer: dict[str, Any]
    per_desk: dict[str, int]
    open_tips: int
    inbox: list[InboxResult]
    statements: list[tuple[str, list[Statement], list[list[str]]]]
    opened: OpenResult
    login: LoginTimes
    http: HttpResult | None
    noise: dict[str, Noise]


def bench_backend(backend: str, args: argparse.Namespace, workdir: Path, url: str | None) -> BackendResult:
    rng = random.Random(args.seed)
    data_dir = workdir / "data"
    write_secrets_file(data_dir)
    database_url = url or f"sqlite:///{data_dir / 'lykta.sqlite3'}"
    settings = load_settings({"LYKTA_DATA_DIR": str(data_dir), "LYKTA_DATABASE_URL": database_url})
    log(f"{backend}: migrating")
    db.upgrade(database_url)
    services = build_services(settings)
    engine = services.engine
    loop = asyncio.new_event_loop()
    watch = CpuWatch(url.rsplit("/", 1)[1] if url else None)
    try:
        with watch.section("seeding"):
            seeded = seed_database(backend, settings, engine, args.tips, rng)
        officer, per_desk = officer_for_busiest_desk(engine, seeded.accounts)
        log(f"{backend}: logging in as {officer['username']} ({LOGIN_RUNS} times, and failures)")
        with watch.section("login"):
            login = measure_login(engine, settings, officer)
        staff, cookies = start_session(services, engine, login)
        ctx = Context(
            backend,
            settings,
            services,
            create_staff_app(settings, services=services),
            engine,
            staff,
            cookies,
            loop,
        )
        with db.read_session(engine) as session:
            open_tips = int(
                session.exec(
                    select(func.count(func.distinct(Tip.id)))
                    .join(TipRecipient, col(TipRecipient.tip_id) == col(Tip.id))
                    .where(col(TipRecipient.desk_id).in_(list(staff.desk_keys)), Tip.status != "closed")
                ).one()
            )
        with watch.section("inbox"):
            inbox = measure_inbox(ctx, args.runs)
        slowest = max(inbox, key=lambda r: percentile(r.view, 0.5))
        statements = []
        for row in [inbox[0]] + ([slowest] if slowest is not inbox[0] else []):  # page 1, and the slowest
            captured = statements_of_inbox(ctx, row.query)
            over = args.explain or percentile(row.view, 0.5) > AIM_INBOX
            statements.append((row.label, captured, [explain(ctx, c) for c in captured] if over else []))
        log(f"{backend}: opening {args.runs} tips, and {args.runs} more through the tip view")
        with watch.section("open"):
            opened = measure_open(ctx, args.runs, rng)
        http = None
        if not args.no_http:
            log(f"{backend}: over HTTP")
            with db.read_session(engine) as session:
                some = sorted(
                    set(
                        session.exec(
                            select(TipRecipient.tip_id).where(
                                col(TipRecipient.desk_id).in_(list(staff.desk_keys))
                            )
                        )
                    )
                )
            engine.dispose()  # the server is another process: leave it the database
            with watch.section("http"):
                http = measure_http(ctx, officer, workdir, rng.sample(some, min(len(some), HTTP_RUNS)))
    finally:
        loop.close()
        engine.dispose()
    return BackendResult(
        backend,
        seeded,
        officer,
        per_desk,
        open_tips,
        inbox,
        statements,
        opened,
        login,
        http,
        watch.noise,
    )


# --- report -------------------------------------------------------------------------------------------------


def note(message: str) -> None:
    print(textwrap.fill(message, width=108, initial_indent="  ", subsequent_indent="  "))


def verdict(seconds: float, aim: float) -> str:
    return "ok" if seconds < aim else f"OVER AIM ({aim * MS:.0f} ms)"


def report(r: BackendResult, args: argparse.Namespace) -> None:
    s = r.seeded
    c = s.counts
    mib = 1024 * 1024

    def shown_noise(section: str) -> None:
        if section in r.noise:
            print(f"  {r.noise[section].describe()}")

    print()
    print(f"== {r.backend}: {c.tips:,} tips ".replace(",", " ") + "=" * 60)
    print(
        f"  machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}; this process, the sealing workers and the database "
        "share it"
    )
    print()
    print("seeding")
    print(
        f"  demo network (portal.demo.seed, 8 staff keys wrapped at {crypto.KEYWRAP_PARAMS_V1.name}): "
        f"{s.seconds_demo:.1f} s"
    )
    print(
        f"  one tipster key, crypto.derive_mailbox at {crypto.REPLY_CODE_PARAMS_V1.name}: "
        f"{s.seconds_tipster_key * MS:.0f} ms"
    )
    print(
        f"  {c.tips} tips sealed and inserted in batches of {BATCH}: {s.seconds_tips:.1f} s "
        f"({c.tips / s.seconds_tips:.0f} tips/s); {c.envelopes} envelopes "
        f"({c.envelope_bytes / mib:.0f} MiB): "
        f"{c.tips} answers, {c.contacts} contact, {c.messages} messages; {c.reads} read markers; "
        f"{c.audit_entries} audit entries"
    )
    statuses = ", ".join(f"{k} {v}" for k, v in sorted(c.statuses.items()))
    print(f"  statuses: {statuses}")
    if r.backend == "postgresql":
        print(f"  VACUUM (ANALYZE): {s.seconds_analyze:.1f} s")
    else:
        print("  no ANALYZE (the application never runs it on SQLite, so the planner has no statistics)")
    v = s.audit_verdict
    print(
        f"  audit chain: {'intact' if v.ok else 'BROKEN at ' + str(v.first_broken)}, {v.entries} entries, "
        f"verified in {s.seconds_verify:.1f} s; database size {s.size_bytes / mib:.0f} MiB"
    )
    note(
        "Every tip is a real age envelope to its routed desks and a tipster key, but one tipster key serves "
        f"all {c.tips} tips (derived once: {c.tips} derivations at "
        f"{crypto.REPLY_CODE_PARAMS_V1.name} would take hours); each tip has its own random 32-byte "
        "mailbox id."
    )
    desks = ", ".join(f"{d} ({r.per_desk.get(d, 0)} tips)" for d in r.officer["desks"])
    print(
        f"  officer measured: {r.officer['username']} ({r.officer['role']}), desks: {desks}; "
        f"{r.open_tips} not closed"
    )
    busiest = sorted(r.per_desk.items(), key=lambda kv: -kv[1])[:3]
    print(f"  busiest desks overall: {', '.join(f'{k} {v}' for k, v in busiest)}")
    shown_noise("seeding")

    print()
    print(f"(a) inbox page, in-process, {args.runs} runs per row; ms p50 / p99")
    header = (
        f"{'scenario':<34}{'rows':>5}{'total':>7}{'inbox()':>15}{'render':>15}{'query+render':>15}"
        f"{'whole view':>15}  verdict"
    )
    print(header)
    print("-" * len(header))
    for row in r.inbox:
        print(
            f"{row.label:<34}{row.rows:>5}{row.total:>7}{p50_p99(row.inbox):>15}{p50_p99(row.render):>15}"
            f"{p50_p99(row.page):>15}{p50_p99(row.view):>15}  {verdict(percentile(row.view, 0.5), AIM_INBOX)}"
        )
    note(
        "inbox(): portal.triage.services.inbox (count, page, counts per desk) in a session_scope; render: "
        "staff/inbox.html through render_staff and the staff renderer; query+render: inbox(), the view's "
        "other queries (desks, municipalities, grants waited for) and the render; whole view: "
        "portal.triage.views.inbox called with a request carrying the session cookie, so it adds opening "
        "the session and unlocking the desk keys (current_staff). Aim: whole view p50 < "
        f"{AIM_INBOX * MS:.0f} ms."
    )
    shown_noise("inbox")
    for label, statements, plans in r.statements:
        print()
        print(
            f"  the SELECTs of inbox() for '{label}', median of 5, ms"
            + (", with their plans:" if plans else ":")
        )
        for i, st in enumerate(statements):
            one_line = re.sub(r"\s+", " ", st.sql)
            print(f"    {st.seconds * MS:7.1f}  {one_line[:160]}{'...' if len(one_line) > 160 else ''}")
            for line in plans[i] if plans else []:
                print(f"               | {line}")

    o = r.opened
    print()
    print(
        f"(b) open and decrypt a tip, in-process, {len(o.open_tip)} + {len(o.view)} different tips of the "
        "officer's desks, desk keys unlocked once after login"
    )
    print(f"{'':<58}{'p50 / p99 ms':>16}  verdict")
    print(f"  {'open_tip()':<56}{p50_p99(o.open_tip):>16}  {verdict(percentile(o.open_tip, 0.5), AIM_OPEN)}")
    print(f"  {'open_tip() and the commit':<56}{p50_p99(o.with_commit):>16}")
    print(f"  {'whole tip view (views.tip_view, in-process)':<56}{p50_p99(o.view):>16}")
    note(
        f"open_tip decrypts the answers, contact, messages and notes ({statistics.mean(o.envelopes):.2f} "
        f"envelopes per tip on average, at most {max(o.envelopes)}), marks the tip read and appends a "
        "tip.opened audit entry; each opening is committed, so the audit log grew from "
        f"{o.audit_before} to {o.audit_after} entries (+{o.audit_after - o.audit_before}, views included). "
        "The whole tip view adds the session, unlocking the desk keys, the tip's audit trail, hand-over "
        "targets, labels, canned replies, colleagues and rendering staff/tip.html."
    )
    shown_noise("open")

    lg = r.login
    print()
    print(
        f"(c) login, authenticate() at {crypto.KEYWRAP_PARAMS_V1.name} (Argon2id ops="
        f"{crypto.KEYWRAP_PARAMS_V1.opslimit}, mem={crypto.KEYWRAP_PARAMS_V1.memlimit // mib} MiB), "
        f"{LOGIN_RUNS} runs each"
    )
    print(f"{'':<58}{'median':>8}{'min':>8}{'max':>8}  ms")
    for name, values in (
        ("correct passphrase and TOTP (a fresh step each time)", lg.correct),
        ("correct user, wrong passphrase", lg.wrong_passphrase),
        ("unknown user", lg.unknown_user),
    ):
        print(
            f"  {name:<56}{statistics.median(values) * MS:>8.0f}{min(values) * MS:>8.0f}"
            f"{max(values) * MS:>8.0f}"
        )
    gap = statistics.median(lg.unknown_user) / statistics.median(lg.correct)
    note(
        f"An unknown user costs {gap:.2f}x a correct login: the same Argon2id work on a dummy blob. Each "
        "attempt ran in a transaction that was rolled back, so the account's last TOTP step stayed in place "
        "for the real login over HTTP below."
    )
    shown_noise("login")

    print()
    if r.http is None:
        print("(d) HTTP: skipped (--no-http)")
        return
    h = r.http
    print("(d) over HTTP, `lykta serve` (1 worker) on 127.0.0.1, one client, keep-alive; ms")
    print(f"  {'POST /staff/login (passphrase + TOTP), once':<56}{h.login * MS:>16.0f}")
    print(f"  {f'GET /staff/, {len(h.inbox)} requests, p50 / p99':<56}{p50_p99(h.inbox):>16}")
    print(f"  {f'GET /staff/tips/<id>, {len(h.tip)} different tips, p50 / p99':<56}{p50_p99(h.tip):>16}")
    note(
        "Client-side latency: the whole view plus the ASGI stack, uvicorn, and loopback. Compare with "
        "'whole view' of 'page 1, newest first' in (a) and the whole tip view in (b)."
    )
    shown_noise("http")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tips", type=int, default=DEFAULT_TIPS, help="tips to seed (default 100 000)")
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--runs", type=int, default=RUNS, help="runs per inbox scenario, and tips opened")
    parser.add_argument("--pg-admin-url", default=PG_ADMIN_URL, help="where to create the benchmark database")
    parser.add_argument("--seed", type=int, default=1, help="seed of the data's random distribution")
    parser.add_argument("--explain", action="store_true", help="print query plans even if the inbox is fast")
    parser.add_argument("--no-http", action="store_true", help="skip (d), the HTTP comparison")
    parser.add_argument("--keep", action="store_true", help="keep the database (and temp dir) for a look")
    args = parser.parse_args()
    started = time.perf_counter()
    backends = ("sqlite", "postgresql") if args.backend == "both" else (args.backend,)
    results = []
    for backend in backends:
        workdir = Path(tempfile.mkdtemp(prefix=f"lykta-triagebench-{backend}-"))
        try:
            with contextlib.ExitStack() as stack:
                url = None
                if backend == "postgresql":
                    url = stack.enter_context(postgres_database(args.pg_admin_url, keep=args.keep))
                results.append(bench_backend(backend, args, workdir, url))
        finally:
            if args.keep:
                log(f"kept {workdir}")
            else:
                shutil.rmtree(workdir, ignore_errors=True)
    print()
    print("Lykta triage benchmark")
    for result in results:
        report(result, args)
    print()
    print(f"total run time: {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()

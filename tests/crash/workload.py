"""Residents who send tips with files and follow them up as fast as they can, against a server that may die.

Each resident is a thread with its own seeded `random.Random`. Every tip and every follow-up message it
tries is written down before it is sent, with a marker (its "what happened" text, or the message text)
that names it inside the ciphertext, and the SHA-256 of each file. An attempt counts as *confirmed* only
when the server's answer proves it was stored: the page with the reply code and case number for a tip, the
redirect to `mailbox?sent=1` for a message. Anything else (a connection reset by the kill, a refusal)
leaves it unconfirmed: afterwards it must be in the database whole, or not at all.
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
import threading
import time

import httpx

from tests.portal.submission.browser import ANSWERS, element_text, file_fields, form_token

KIB = 1024
FILE_SIZES = (200 * KIB, 2 * 1024 * KIB)  # each file: a few hundred KiB to a few MiB, random bytes
LANG = "sv"


@dataclasses.dataclass(frozen=True, order=True)
class SentFile:
    name: str
    sha256: str
    size: int


@dataclasses.dataclass
class TipAttempt:
    marker: str  # the "what happened" answer: unique, found again by decrypting
    files: list[SentFile]
    reply_code: str | None = None
    case_number: str | None = None

    @property
    def confirmed(self) -> bool:
        return self.reply_code is not None


@dataclasses.dataclass
class MessageAttempt:
    tip_marker: str
    marker: str  # the message text
    files: list[SentFile]
    confirmed: bool = False


@dataclasses.dataclass
class Outcomes:
    """What one resident tried and what the server confirmed, and what went wrong on the way."""

    tips: list[TipAttempt] = dataclasses.field(default_factory=list)
    messages: list[MessageAttempt] = dataclasses.field(default_factory=list)
    cut_off: int = 0  # requests whose connection failed (the server was killed or not up yet)
    refused: list[str] = dataclasses.field(default_factory=list)  # unexpected answers, for the report
    unopened: list[str] = dataclasses.field(default_factory=list)  # confirmed tips whose mailbox lacked them


def _random_files(
    rng: random.Random, name: str, count: int
) -> tuple[list[SentFile], list[tuple[str, bytes]]]:
    records, bodies = [], []
    for i in range(count):
        body = rng.randbytes(rng.randint(*FILE_SIZES))
        file_name = f"{name}-{i}.bin"
        records.append(SentFile(file_name, hashlib.sha256(body).hexdigest(), len(body)))
        bodies.append((file_name, body))
    return records, bodies


def _file_stem(marker: str) -> str:
    return marker.split()[1].replace("/", "-")


class Resident(threading.Thread):
    """Sends tips (one or two files each) and follow-ups (a message and up to one file) until `stop`."""

    def __init__(self, name: str, base_url: str, *, seed: int, stop: threading.Event) -> None:
        super().__init__(name=name, daemon=True)
        self.base_url = base_url
        self.rng = random.Random(seed)
        self.stop = stop
        self.outcomes = Outcomes()
        self.failure: BaseException | None = None
        # Set while a send (a tip, or an answer) is on its way: the killer aims at these moments.
        self.sending = threading.Event()
        self._count = 0

    def _browser(self) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, follow_redirects=False, timeout=60)

    def _next_marker(self, kind: str) -> str:
        self._count += 1
        return f"crash-{kind} {self.name}/{self._count}/{self.rng.getrandbits(64):016x}"

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                confirmed = [t for t in self.outcomes.tips if t.confirmed]
                try:
                    if confirmed and self.rng.random() < 0.5:
                        self._follow_up(self.rng.choice(confirmed))
                    else:
                        self._send_tip()
                except httpx.TransportError:
                    # The server went away mid-request, or is not up again yet.
                    self.outcomes.cut_off += 1
                    time.sleep(0.2)
        except BaseException as error:  # reported by the test, with the traceback
            self.failure = error

    def _send_tip(self) -> None:
        marker = self._next_marker("tip")
        answers = {**ANSWERS, "what": marker}
        with self._browser() as browser:
            form = browser.get(f"/{LANG}/tip")
            if form.status_code != 200:
                self.outcomes.refused.append(f"GET /tip {form.status_code}")
                return
            reviewed = browser.post(
                f"/{LANG}/tip", data={**answers, "csrf": form_token(form.text, f"/{LANG}/tip")}
            )
            if reviewed.status_code != 200:
                self.outcomes.refused.append(f"review {reviewed.status_code}")
                return
            fields = {**answers, "csrf": form_token(reviewed.text, f"/{LANG}/tip/send"), "confirm": "yes"}
            records, bodies = _random_files(self.rng, _file_stem(marker), self.rng.randint(1, 2))
            attempt = TipAttempt(marker=marker, files=records)
            # Written down before it is sent: from here on the tip may be stored whatever the client hears.
            self.outcomes.tips.append(attempt)
            self.sending.set()
            try:
                sent = browser.post(f"/{LANG}/tip/send", data=fields, files=file_fields(bodies))
            finally:
                self.sending.clear()
        if sent.status_code == 200 and 'id="reply-code"' in sent.text:
            attempt.reply_code = element_text(sent.text, "reply-code")
            attempt.case_number = element_text(sent.text, "case-number")
        else:
            self.outcomes.refused.append(f"send {sent.status_code}")

    def _follow_up(self, tip: TipAttempt) -> None:
        assert tip.reply_code is not None
        marker = self._next_marker("message")
        with self._browser() as browser:
            login = browser.get(f"/{LANG}/followup")
            if login.status_code != 200:
                self.outcomes.refused.append(f"GET /followup {login.status_code}")
                return
            logged_in = browser.post(
                f"/{LANG}/followup",
                data={"reply_code": tip.reply_code, "csrf": form_token(login.text, f"/{LANG}/followup")},
            )
            if logged_in.status_code != 303:
                self.outcomes.refused.append(f"login {logged_in.status_code}")
                return
            mailbox = browser.get(f"/{LANG}/mailbox")
            if mailbox.status_code != 200:
                self.outcomes.refused.append(f"mailbox {mailbox.status_code}")
                return
            if tip.marker not in mailbox.text:  # a confirmed tip that its own reply code does not open
                self.outcomes.unopened.append(tip.marker)
                return
            records, bodies = _random_files(self.rng, _file_stem(marker), self.rng.choice((0, 1, 1)))
            attempt = MessageAttempt(tip_marker=tip.marker, marker=marker, files=records)
            self.outcomes.messages.append(attempt)
            self.sending.set()
            try:
                sent = browser.post(
                    f"/{LANG}/mailbox/reply",
                    data={"message": marker, "csrf": form_token(mailbox.text, f"/{LANG}/mailbox/reply")},
                    files=file_fields(bodies),
                )
            finally:
                self.sending.clear()
        if sent.status_code == 303 and sent.headers.get("location", "").endswith("sent=1"):
            attempt.confirmed = True
        else:
            self.outcomes.refused.append(f"reply {sent.status_code}")

"""Guessing reply codes against a real `lykta serve` (issue 6, item 4; DESIGN 3 and 6).

Many "clients" (each its own cookies and form token, as separate browsers would be) send well-formed codes
with a valid check digit, so every one would reach the Argon2id derivation. What must hold:

* the global budget (LYKTA_FOLLOWUP_ATTEMPTS_PER_MINUTE, portal.ratelimit) caps the derivations: every
  attempt over it is a quick 429 that derives nothing;
* the server's CPU time and memory during the flood stay within bounds that follow from that cap (a few
  derivations' worth, measured from /proc, against the cost of one derivation measured here), never
  growing with the number of guesses;
* the real code opens its mailbox once the window has passed. While the flood's window lasts, a real
  tipster is refused too: the budget is global by design, because the server knows nothing that tells a
  tipster from a guesser (no IP address is ever used). The test states that openly.
"""

from __future__ import annotations

import concurrent.futures
import time

import pytest

import crypto
from portal.ratelimit import WINDOW_SECONDS
from tests.attacks.live import FOLLOWUP_ATTEMPTS_PER_MINUTE, LiveLykta, ProcessGauge
from tests.portal.submission.browser import ANSWERS, form_token, send_tip

pytestmark = pytest.mark.live_server
CLIENTS = 10
GUESSES_PER_CLIENT = 20
DERIVATION_MIB = crypto.REPLY_CODE_PARAMS_V1.memlimit // (1024 * 1024)


def one_derivation_cpu_seconds() -> float:
    """The CPU time of one production derivation on this machine, measured in this process."""
    started = time.process_time()
    crypto.derive_mailbox(crypto.ReplyCode.generate(), instance_salt=bytes(16), pepper=bytes(32))
    return time.process_time() - started


def guesser(live: LiveLykta, guesses: int) -> list[int]:
    """One client: opens the follow-up form once, then types `guesses` codes that pass the typo check."""
    with live.browser() as browser:
        token = form_token(browser.get("/sv/followup").text, "/sv/followup")
        statuses = []
        for _ in range(guesses):
            code = crypto.ReplyCode.generate().grouped()
            answer = browser.post("/sv/followup", data={"reply_code": code, "csrf": token})
            statuses.append(answer.status_code)
        return statuses


def test_a_flood_of_guesses_is_capped_and_a_real_code_still_opens(live: LiveLykta) -> None:
    with live.browser() as tipster:
        code, case_number = send_tip(tipster, "sv", ANSWERS, [("bild.bin", b"B" * 5000)])
    live.let_the_rate_window_pass()
    gauge = ProcessGauge(live.pid)
    before = gauge.sample()
    started_window = int(time.time() // WINDOW_SECONDS)

    with concurrent.futures.ThreadPoolExecutor(CLIENTS) as pool:
        results = list(pool.map(lambda _: guesser(live, GUESSES_PER_CLIENT), range(CLIENTS)))
    windows = int(time.time() // WINDOW_SECONDS) - started_window + 1
    after = gauge.sample()
    statuses = [status for client in results for status in client]

    # Unknown (400) or busy (503) answers are attempts inside the budget; the rest were refused at once.
    counted = [s for s in statuses if s != 429]
    assert set(statuses) <= {400, 429, 503}, statuses
    assert len(counted) <= FOLLOWUP_ATTEMPTS_PER_MINUTE * windows
    assert statuses.count(429) >= len(statuses) - FOLLOWUP_ATTEMPTS_PER_MINUTE * windows

    # CPU: at most the budget's derivations (each allowed three times the cost measured here, the server
    # being as loaded as this machine is), plus for every guess a small fraction of one derivation. Without
    # the limit, the guesses alone would cost their number in derivations: twice this bound.
    derivation = one_derivation_cpu_seconds()
    budget = FOLLOWUP_ATTEMPTS_PER_MINUTE * windows
    spent = after.cpu_seconds - before.cpu_seconds
    assert spent <= 3 * budget * derivation + len(statuses) * derivation / 4, (spent, derivation, budget)
    # Memory: derivations run one at a time here (LYKTA_REPLY_CODE_CONCURRENCY=1), each over 64 MiB, and
    # one already ran for the tip above: the peak grows by at most one more derivation's memory and slack.
    assert after.peak_rss_bytes <= before.peak_rss_bytes + (DERIVATION_MIB + 64) * 1024 * 1024
    assert after.rss_bytes <= before.rss_bytes + (DERIVATION_MIB + 64) * 1024 * 1024

    with live.browser() as tipster:
        # During the flood's window the real tipster is refused as well: the budget is global (see above).
        token = form_token(tipster.get("/sv/followup").text, "/sv/followup")
        refused = tipster.post("/sv/followup", data={"reply_code": code, "csrf": token})
        assert refused.status_code == 429
        assert "lykta_mailbox" not in tipster.cookies
        live.let_the_rate_window_pass()
        opened = tipster.post("/sv/followup", data={"reply_code": code, "csrf": token})
        assert opened.status_code == 200 and opened.url.path == "/sv/mailbox"
        assert case_number in opened.text and ANSWERS["what"] in opened.text
    assert live.alive(), live.output()

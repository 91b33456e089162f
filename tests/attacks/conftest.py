"""One real `lykta serve` shared by the attack tests that are about the server itself (tests/attacks/live.py);
the others use the in-process fixtures of tests/conftest.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.attacks.live import LiveLykta
from tests.portal.conftest import staff_clock

__all__ = ["live", "staff_clock"]  # staff_clock: each in-process staff login gets a fresh TOTP step


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveLykta]:
    server = LiveLykta(tmp_path_factory.mktemp("lykta-attacks"))
    try:
        server.start()
        yield server
    finally:
        server.stop()

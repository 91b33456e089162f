from __future__ import annotations

import pytest


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print how many age conformance vectors ran and passed, and how many were skipped by rule (issue 2)."""
    from tests.crypto.test_vectors import RUNNABLE, SKIPPED

    def outcome_count(outcome: str) -> int:
        reports = terminalreporter.stats.get(outcome, [])
        return sum(
            1 for r in reports if "test_vector_outcome[" in getattr(r, "nodeid", "") and r.when == "call"
        )

    passed, failed = outcome_count("passed"), outcome_count("failed")
    if passed or failed:
        terminalreporter.write_line(
            f"age conformance vectors: {passed} passed, {failed} failed of {len(RUNNABLE)} runnable; "
            f"{len(SKIPPED)} skipped by rule (armor, scrypt, ML-KEM hybrid)"
        )

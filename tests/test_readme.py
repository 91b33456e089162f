"""The README's set-up commands are the ones CI runs (the README must stay true at every commit)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def readme_commands() -> list[str]:
    return re.findall(r"```sh\n(.+?)\n```", (ROOT / "README.md").read_text())


def test_readme_has_the_two_setup_commands() -> None:
    run, test = readme_commands()[:2]
    assert "lykta init" in run and "lykta demo --accounts-json" in run and run.endswith("lykta serve")
    assert "pytest" in test


def test_ci_runs_the_readme_test_command() -> None:
    test_command = readme_commands()[1].split(" && ")[-1]
    ci = (ROOT / ".ci" / "run").read_text()
    assert f"\n{test_command}\n" in ci
    for package in re.search(r"apt-get install -y ([\w -]+?) &&", readme_commands()[1]).group(1).split():
        assert package in ci

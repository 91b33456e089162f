"""deploy/README.md walks through every file of deploy/."""

from __future__ import annotations

from tests.deploy.conftest import (
    DEPLOY,
)


def test_the_readme_names_every_file_of_deploy() -> None:
    readme = (DEPLOY / "README.md").read_text()
    for path in sorted(DEPLOY.rglob("*")):
        if path.is_file() and path.name != "README.md":
            assert str(path.relative_to(DEPLOY)) in readme, f"deploy/README.md never mentions {path.name}"

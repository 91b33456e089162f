"""The `lykta` command. Each subcommand arrives with the part of Lykta it drives."""

from __future__ import annotations

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="lykta")
def main() -> None:
    """Lykta: an anonymous tip portal for municipalities and the police."""

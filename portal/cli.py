"""The `lykta` command: set up an instance, seed the demo network, serve it."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import click

from portal import db
from portal.settings import (
    SECRET_NAMES,
    SECRETS_FILE,
    SettingsError,
    data_dir_from,
    load_settings,
    write_secrets_file,
)


def _settings_or_exit():  # type: ignore[no-untyped-def]
    try:
        return load_settings()
    except SettingsError as error:
        raise click.ClickException(str(error)) from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="lykta")
def main() -> None:
    """Lykta: an anonymous tip portal for municipalities and the police."""


@main.command()
def init() -> None:
    """Create the data directory, the instance secrets and the database schema.

    Secrets (signing key, reply-code salt, pepper) are written to secrets.json in LYKTA_DATA_DIR,
    readable by this user only, unless all of them are given as LYKTA_* environment variables.
    Safe to run again: existing secrets are kept and the schema is brought up to date.
    """
    data_dir = data_dir_from(os.environ)
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    all_in_env = all(os.environ.get(f"LYKTA_{name.upper()}") for name in SECRET_NAMES)
    if not all_in_env and not (data_dir / SECRETS_FILE).exists():
        path = write_secrets_file(data_dir)
        click.echo(f"Wrote new instance secrets to {path} (mode 600). Keep them apart from database backups.")
    settings = _settings_or_exit()
    db.upgrade(settings.database_url)
    click.echo(f"Database is up to date ({db.normalise_url(settings.database_url).split(':', 1)[0]}).")


@main.command()
@click.option(
    "--accounts-json",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the demo accounts and recovery identities here (mode 600).",
)
def demo(accounts_json: Path | None) -> None:
    """Seed the demo network: organisations, municipalities, desks with key pairs, routing, staff."""
    from portal.demo import is_seeded, seed

    settings = _settings_or_exit()
    engine = db.make_nullpool_engine(settings.database_url)
    with db.session_scope(engine) as session:
        if is_seeded(session):
            click.echo("The demo network is already seeded; nothing to do.")
            return
        accounts = seed(session, signing_key=settings.signing_key)
    if accounts_json is not None:
        fd = os.open(accounts_json, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(accounts, f, indent=2, ensure_ascii=False)
        click.echo(
            f"Wrote {len(accounts['accounts'])} demo accounts and the recovery identities to {accounts_json}."
        )
    click.echo("Seeded the demo network.")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=int, help="Worker processes.")
def serve(host: str, port: int, workers: int) -> None:
    """Serve Lykta. The access log holds no client address, user agent or referrer."""
    import uvicorn

    _settings_or_exit()  # fail here, clearly, rather than in every worker
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    shown_host = f"[{host}]" if ":" in host else host
    click.echo(f"Lykta is running: open http://{shown_host}:{port}/")
    uvicorn.run(
        "portal.asgi:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=False,  # uvicorn's access log records client addresses; ours (portal.middleware) does not
        server_header=False,
        proxy_headers=False,
        log_config=None,
    )


@main.group()
def audit() -> None:
    """The hash-chained audit log."""


@audit.command("verify")
def audit_verify() -> None:
    """Check the whole chain; name the first entry that is edited, missing or out of order."""
    from portal.audit.log import verify

    settings = _settings_or_exit()
    engine = db.make_nullpool_engine(settings.database_url)
    with db.read_session(engine) as session:
        verdict = verify(session)
    if verdict.ok:
        click.echo(f"The audit log is intact: {verdict.entries} entries.")
        return
    raise click.ClickException(
        f"The audit log is broken at entry {verdict.first_broken}: {verdict.reason} "
        f"({verdict.entries} entries before it are intact)."
    )

"""The `lykta` command: set up an instance, seed the demo network, serve it."""

from __future__ import annotations

import datetime
import json
import logging
import os
from pathlib import Path

import click

from portal import db
from portal.settings import (
    SECRET_NAMES,
    SECRETS_FILE,
    Settings,
    SettingsError,
    data_dir_from,
    load_settings,
    write_secrets_file,
)


def _settings_or_exit() -> Settings:
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
@click.option(
    "--part",
    type=click.Choice(["all", "resident", "staff"]),
    default="all",
    show_default=True,
    help="Serve both parts, only the resident side (for the onion service or the internet), or only the "
    "back office under /staff/ (for an internal address).",
)
def serve(host: str, port: int, workers: int, part: str) -> None:
    """Serve Lykta. The access log holds no client address, user agent or referrer."""
    import uvicorn

    from portal.protocol import HeadTimeoutProtocol

    _settings_or_exit()  # fail here, clearly, rather than in every worker
    # One Argon2id derivation per core in all: more threads than cores only make each one slower and the
    # event loops stall (measured in benchmarks/submit_bench.py). An explicit setting wins.
    os.environ.setdefault("LYKTA_REPLY_CODE_CONCURRENCY", str(max(1, (os.cpu_count() or 1) // workers)))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    shown_host = f"[{host}]" if ":" in host else host
    path = "staff/" if part == "staff" else ""
    click.echo(f"Lykta is running: open http://{shown_host}:{port}/{path}")
    uvicorn.run(
        {"all": "portal.asgi:app_from_environment"}.get(part, f"portal.asgi:{part}_app_from_environment"),
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=False,  # uvicorn's access log records client addresses; ours (portal.middleware) does not
        server_header=False,
        proxy_headers=False,
        log_config=None,
        # uvicorn times out only idle keep-alive connections: this protocol also closes a connection whose
        # request head has not arrived within 10 s (slowloris; tests/attacks/test_slow_and_oversized.py).
        # Heads are capped at 16 KiB by h11, bodies by portal.middleware.BodyLimit (size and idle time).
        http=HeadTimeoutProtocol,
        timeout_keep_alive=5,
        h11_max_incomplete_event_size=16 * 1024,
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


def _database_url() -> str:
    """The database the settings name, without needing the instance secrets (a restore may come first)."""
    from portal.settings import default_database_url

    return os.environ.get("LYKTA_DATABASE_URL") or default_database_url(data_dir_from(os.environ))


@main.command()
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
def backup(path: Path) -> None:
    """Write a consistent snapshot of the database to PATH while the service runs.

    SQLite: the online backup API; PostgreSQL: pg_dump. The file (mode 600) holds the whole database and
    never the instance secrets or recovery keys: keep those apart (docs/backups.md).
    """
    from portal.backup import BackupError, take_backup

    try:
        manifest = take_backup(_database_url(), path)
    except BackupError as error:
        raise click.ClickException(f"No backup was written: {error}.") from None
    click.echo(
        f"Wrote a {manifest.backend} backup (schema {manifest.schema_revision}, {manifest.size} bytes, "
        f"sha256 {manifest.sha256}) to {path}."
    )


@main.command()
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace a database that holds data already.")
def restore(path: Path, force: bool) -> None:
    """Bring a backup back into an empty database (LYKTA_DATABASE_URL, or the data directory's SQLite).

    The whole backup is checked before anything is replaced; a damaged one changes nothing. Stop Lykta
    first. Put the instance secrets back yourself: they are not in the backup (docs/backups.md).
    """
    from portal.backup import RestoreError, TargetNotEmptyError, restore_backup

    try:
        manifest = restore_backup(path, _database_url(), force=force)
    except TargetNotEmptyError as error:
        raise click.ClickException(f"Nothing was restored: {error}. Use --force to replace it.") from None
    except RestoreError as error:
        raise click.ClickException(f"Nothing was restored: {error}.") from None
    click.echo(
        f"Restored the {manifest.backend} backup taken at {manifest.created_at}; the schema is up to date."
    )
    if not (data_dir_from(os.environ) / SECRETS_FILE).exists() and not all(
        os.environ.get(f"LYKTA_{name.upper()}") for name in SECRET_NAMES
    ):
        click.echo(
            "The instance secrets are missing: put this instance's secrets.json back into the data directory "
            "(or set LYKTA_SIGNING_KEY, LYKTA_INSTANCE_SALT and LYKTA_PEPPER). New ones would lock out "
            "every reply code and staff TOTP."
        )


@main.command()
@click.option("--dry-run", is_flag=True, help="Count what would be deleted; change nothing.")
@click.option(
    "--batch",
    default=50,
    show_default=True,
    type=click.IntRange(1, 10_000),
    help="Tips deleted per transaction.",
)
def purge(dry_run: bool, batch: int) -> None:
    """Delete for good every tip whose deletion date has passed (run daily, e.g. by a systemd timer).

    A closed tip is due on the date its desks' retention rules give it (shown on the tip page); open tips
    and tips on legal hold are never due. With a tip go its messages, files and their chunks, notes,
    labels, read marks, hand-overs, recipients and the tipster's sessions. Expired sessions and old
    rate-limit windows are removed too. The counts (never case numbers) go to the audit log as one entry.
    Safe to run twice, or twice at once.
    """
    from portal.retention import purge as retention_purge
    from portal.triage.web import ABSOLUTE, IDLE

    settings = _settings_or_exit()
    engine = db.make_nullpool_engine(settings.database_url)
    try:
        if dry_run:
            report = retention_purge.preview(engine)
        else:
            # A staff session is over after 30 idle minutes or 12 hours; a tipster's after its idle time.
            idle = {
                "staff": min(IDLE, ABSOLUTE),
                "tipster": datetime.timedelta(minutes=settings.tipster_idle_minutes),
            }
            report = retention_purge.purge(engine, batch=batch, session_idle=idle)
    finally:
        engine.dispose()
    order = ["tips", *(kind for kind in retention_purge.KINDS if kind != "tips")]
    counts = ", ".join(f"{kind}: {report.counts[kind]}" for kind in order)
    if dry_run:
        click.echo(f"Dry run, nothing deleted. Due now: {counts}.")
        click.echo(f"Closed tips without a deletion date yet (dated on the next run): {report.dated}.")
        return
    click.echo(f"Deleted {counts}.")
    click.echo(
        f"Dated {report.dated} closed tips; removed {report.expired_sessions} expired sessions and "
        f"{report.old_rate_counters} old rate-limit windows."
    )


@main.group()
def desk() -> None:
    """Desks and who holds their keys."""


@desk.command("grant")
@click.option(
    "--recovery-identity",
    "identity_file",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The organisation's recovery identity, an age identity file (AGE-SECRET-KEY-1...).",
)
@click.option("--desk", "desk_code", required=True, help="The desk's code.")
@click.option("--user", "username", required=True, help="The member to grant the desk key to.")
def desk_grant(identity_file: Path, desk_code: str, username: str) -> None:
    """Grant a desk's key to a member from the recovery key, for when no member holding it is left.

    The member must belong to the desk and have enrolled. Every key the desk has had is granted, so they
    can read its older tips too. The recovery identity is read from the file and used only in memory.
    """
    import crypto
    from portal.keyring.services import KeyringError, WrongKeyError, grant_from_recovery

    try:
        identities = crypto.parse_identities(identity_file.read_text(encoding="utf-8"))
    except (crypto.KeyFormatError, UnicodeDecodeError) as error:
        raise click.ClickException(f"{identity_file} is not an age identity file: {error}") from None
    settings = _settings_or_exit()
    engine = db.make_nullpool_engine(settings.database_url)
    granted: bool | None = None
    try:
        with db.session_scope(engine) as session:
            # An identity file may hold several keys (as age allows): the first that opens the desk's
            # recovery grants is the one; the others change nothing.
            for identity in identities:
                try:
                    granted = grant_from_recovery(
                        session, desk_code=desk_code, recovery_identity=identity, staff_username=username
                    )
                    break
                except WrongKeyError:
                    continue
            if granted is None:
                raise click.ClickException(
                    f"{identity_file} does not hold the recovery key of the organisation of desk "
                    f"{desk_code!r}."
                )
    except KeyringError as error:
        raise click.ClickException(f"Nothing was granted: {error}.") from None
    finally:
        engine.dispose()
    if granted:
        click.echo(f"Granted the key of desk {desk_code} to {username}.")
    else:
        click.echo(f"{username} already holds the key of desk {desk_code}; nothing to do.")


@desk.command("list")
def desk_list() -> None:
    """Every desk with its member count, key holders and the members waiting for a grant."""
    from sqlmodel import col, select

    from portal.accounts.models import DeskMembership
    from portal.keyring.services import key_holders, members_waiting
    from portal.network.models import Desk

    settings = _settings_or_exit()
    engine = db.make_nullpool_engine(settings.database_url)
    with db.read_session(engine) as session:
        for row in session.exec(select(Desk).order_by(col(Desk.code))):
            assert row.id is not None
            members = len(session.exec(select(DeskMembership).where(DeskMembership.desk_id == row.id)).all())
            holders = len(key_holders(session, row.id))
            waiting = [account.username for account in members_waiting(session, row.id)]
            line = f"{row.code}\tmembers: {members}\tholding the key: {holders}"
            click.echo(line + (f"\twaiting: {', '.join(waiting)}" if waiting else ""))
    engine.dispose()


@main.group()
def user() -> None:
    """Staff accounts."""


@user.command("invite")
@click.option("--username", required=True, help="Lower-case letters, digits, '.', '_' and '-'.")
@click.option("--role", required=True, help="officer, desk-lead, administrator or analyst.")
@click.option("--desk", "desk_codes", multiple=True, help="A desk to make the person a member of (repeat).")
@click.option(
    "--organisation", "organisation_code", help="The organisation (default: that of the first desk)."
)
def user_invite(username: str, role: str, desk_codes: tuple[str, ...], organisation_code: str | None) -> None:
    """Invite a person: create the account and print its one-time enrolment link (valid 72 hours).

    The link is shown only now: pass it on yourself, by a channel you trust. Desk memberships give no key
    yet: once enrolled, the person is granted each desk's key by a member (or `lykta desk grant`).
    """
    from sqlmodel import select

    from portal.accounts.enrolment import InviteError, invite
    from portal.audit import log as audit_log
    from portal.network.models import Desk, Organisation

    settings = _settings_or_exit()
    engine = db.make_nullpool_engine(settings.database_url)
    try:
        with db.session_scope(engine) as session:
            desks = []
            for code in desk_codes:
                found = session.exec(select(Desk).where(Desk.code == code)).first()
                if found is None or found.id is None:
                    raise click.ClickException(f"No desk with the code {code!r}; see `lykta desk list`.")
                desks.append(found)
            organisation_id = desks[0].organisation_id if desks else None
            if organisation_code:
                organisation = session.exec(
                    select(Organisation).where(Organisation.code == organisation_code)
                ).first()
                if organisation is None:
                    raise click.ClickException(f"No organisation with the code {organisation_code!r}.")
                organisation_id = organisation.id
            desk_ids = [d.id for d in desks if d.id is not None]
            token = invite(
                session,
                username=username.strip().lower(),
                role=role,
                organisation_id=organisation_id,
                desk_ids=desk_ids,
                created_by=None,
            )
            audit_log.record(
                session,
                "admin.staff.invited",
                actor="cli",
                detail={
                    "username": username.strip().lower(),
                    "role": role,
                    "organisation_id": organisation_id,
                    "desk_ids": desk_ids,
                },
            )
    except InviteError as error:
        raise click.ClickException(f"Nobody was invited: {error}.") from None
    finally:
        engine.dispose()
    click.echo("Give this one-time link to the person (it is not stored and cannot be shown again):")
    click.echo(f"/staff/enrol/{token}")


@main.group()
def notify() -> None:
    """E-mail notifications to staff (never with tip content)."""


@notify.command("run")
@click.option("--once", is_flag=True, help="Send what is due now, then stop.")
@click.option(
    "--interval", default=60, show_default=True, type=click.IntRange(min=1), help="Seconds between rounds."
)
def notify_run(once: bool, interval: int) -> None:
    """Send due notifications over SMTP with STARTTLS; retry failures, and give up after several attempts.

    Any number of senders may run at once against PostgreSQL. Failures are listed for administrators at
    /staff/admin/notifications. Stop with Ctrl-C or SIGTERM.
    """
    import signal
    import threading

    from portal.notify.sender import NotConfiguredError, run

    settings = _settings_or_exit()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        report = run(settings, once=once, interval=interval, stop=stop)
    except NotConfiguredError as error:
        raise click.ClickException(str(error)) from None
    except KeyboardInterrupt:
        return
    if once:
        click.echo(f"Notifications: {report}.")

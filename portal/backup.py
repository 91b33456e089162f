"""Backups of the database, taken while the service runs, and restoring them (issue 5, docs/backups.md).

A backup file is an uncompressed tar archive of two members:

    manifest.json       what it is: format, backend, schema revision, time, payload name, size and SHA-256
    database.sqlite3    SQLite: a snapshot made with the online backup API (one consistent read transaction)
    database.pgdump     PostgreSQL: `pg_dump --format=custom` (one consistent snapshot)

The database is everything: tips, their files (in chunks, DESIGN 5), messages, keys as stored, audit log.
The instance secrets (secrets.json or LYKTA_* variables) and the organisations' recovery identities are
never in a backup; docs/backups.md says where they go instead.

Restoring checks the whole file first (every byte against the manifest's SHA-256, then SQLite's integrity
check or `pg_restore --list`, and that this version of Lykta knows the schema revision) and only then
replaces anything: on SQLite by renaming a complete file into place, on PostgreSQL inside one transaction
(`pg_restore --single-transaction`). A refused or failed restore leaves the target as it was.

Errors: BackupError (the snapshot could not be taken) and RestoreError (refused, nothing changed); its
subclass TargetNotEmptyError says the target holds data and --force was not given.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import inspect
from sqlalchemy.engine import make_url

from portal import db

FORMAT = "lykta-backup-1"
MANIFEST = "manifest.json"
PAYLOADS = {"sqlite": "database.sqlite3", "postgresql": "database.pgdump"}
_MAX_MANIFEST_BYTES = 64 * 1024
_CHUNK = 1024 * 1024


class BackupError(Exception):
    """The backup could not be taken; nothing was written at the path."""


class RestoreError(Exception):
    """The backup was refused or could not be restored; the target is as it was."""


class TargetNotEmptyError(RestoreError):
    """The target database holds data and overwriting it was not asked for."""


@dataclasses.dataclass(frozen=True)
class Manifest:
    format: str
    backend: str  # "sqlite" or "postgresql"
    schema_revision: str
    created_at: str  # ISO 8601, UTC
    payload: str
    size: int
    sha256: str

    def to_json(self) -> bytes:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True).encode("utf-8")

    @classmethod
    def from_json(cls, raw: bytes) -> Manifest:
        try:
            fields = json.loads(raw)
            manifest = cls(**{f.name: fields[f.name] for f in dataclasses.fields(cls)})
        except (ValueError, KeyError, TypeError):
            raise RestoreError("the backup's manifest is unreadable") from None
        if manifest.format != FORMAT:
            raise RestoreError(f"not a Lykta backup of a known format ({manifest.format!r})")
        if PAYLOADS.get(manifest.backend) != manifest.payload:
            raise RestoreError("the backup's manifest names an unknown database payload")
        return manifest


def backend_of(database_url: str) -> str:
    url = make_url(db.normalise_url(database_url))
    if url.get_backend_name() not in PAYLOADS:
        raise BackupError(f"backups of {url.get_backend_name()} databases are not supported")
    return url.get_backend_name()


def _sqlite_path(database_url: str) -> Path:
    path = make_url(database_url).database
    if not path or path == ":memory:":
        raise BackupError("the SQLite database must be a file")
    return Path(path)


def _libpq(database_url: str) -> tuple[str, dict[str, str]]:
    """A URI for pg_dump/pg_restore and an environment carrying the password (never on a command line,
    where any local user could read it in the process list)."""
    url = make_url(db.normalise_url(database_url))
    env = dict(os.environ)
    if url.password is not None:
        env["PGPASSWORD"] = str(url.password)
    return url.set(drivername="postgresql", password=None).render_as_string(hide_password=False), env


def _run(
    args: list[str], *, env: dict[str, str] | None = None, error: type[Exception] = BackupError
) -> subprocess.CompletedProcess[bytes]:
    try:
        # A fixed program with our own paths and the configured URL as separate arguments; no shell.
        return subprocess.run(args, env=env, capture_output=True, check=False)  # noqa: S603
    except FileNotFoundError:
        raise error(f"{args[0]} is not installed (Debian: apt-get install postgresql-client)") from None


def _stderr(result: subprocess.CompletedProcess[bytes]) -> str:
    return result.stderr.decode("utf-8", "replace").strip() or f"exit status {result.returncode}"


# -- taking a backup -------------------------------------------------------------------------------------


def _snapshot_sqlite(database_url: str, out: Path) -> str:
    """Copy the live database with the online backup API; return the schema revision of the copy."""
    source_path = _sqlite_path(database_url)
    if not source_path.is_file():
        raise BackupError(f"there is no database at {source_path}")
    source = sqlite3.connect(source_path, timeout=30)
    try:
        source.execute("PRAGMA busy_timeout=30000")
        target = sqlite3.connect(out)
        try:
            # pages=-1 (the default) copies everything in one step, inside one read transaction: writers go
            # on meanwhile (WAL), and the copy is the database as of one instant.
            source.backup(target)
            # The copy is a single self-contained file: no WAL beside it.
            target.execute("PRAGMA journal_mode=DELETE")
            return _sqlite_revision(target)
        finally:
            target.close()
    except sqlite3.Error as error:
        raise BackupError(f"could not copy the SQLite database: {error}") from None
    finally:
        source.close()


def _sqlite_revision(conn: sqlite3.Connection) -> str:
    try:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.Error:
        row = None
    if row is None:
        raise BackupError("the database has no schema revision: is it a Lykta database (`lykta init`)?")
    return str(row[0])


def _pg_revision(dump: Path) -> str:
    """The schema revision recorded in the dump itself (read back with pg_restore, which also proves the
    dump is readable)."""
    result = _run(["pg_restore", "--data-only", "--table=alembic_version", "--file=-", str(dump)])
    if result.returncode != 0:
        raise BackupError(f"pg_restore cannot read the dump just written: {_stderr(result)}")
    lines = result.stdout.decode("utf-8").splitlines()
    try:
        start = next(
            i for i, line in enumerate(lines) if line.startswith("COPY ") and "alembic_version" in line
        )
    except StopIteration:
        raise BackupError("the database has no schema revision: is it a Lykta database?") from None
    if start + 1 >= len(lines) or lines[start + 1] == "\\.":
        raise BackupError("the database has no schema revision: is it a Lykta database?")
    return lines[start + 1].strip()


def _snapshot_postgresql(database_url: str, out: Path) -> str:
    uri, env = _libpq(database_url)
    # --no-owner/--no-privileges: the dump restores into a database owned by any role. --compress=1: files
    # are ciphertext, dumped as hex text, which the fastest zlib level halves as well as the default level
    # does, in a third of the time (benchmarks/backup_bench.py).
    args = ["pg_dump", "--format=custom", "--compress=1", "--no-owner", "--no-privileges"]
    args += [f"--file={out}", f"--dbname={uri}"]
    result = _run(args, env=env)
    if result.returncode != 0:
        hint = ""
        if "version mismatch" in result.stderr.decode("utf-8", "replace"):
            hint = " (install the postgresql-client of the server's major version, or newer)"
        raise BackupError(f"pg_dump failed: {_stderr(result)}{hint}")
    return _pg_revision(out)


def _digest(path: Path) -> tuple[int, str]:
    sha256, size = hashlib.sha256(), 0
    with path.open("rb") as f:
        while block := f.read(_CHUNK):
            sha256.update(block)
            size += len(block)
    return size, sha256.hexdigest()


@contextlib.contextmanager
def _private_dir(near: Path) -> Iterator[Path]:
    """A directory only this user can read, on the same file system as `near`, removed afterwards."""
    near.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = Path(tempfile.mkdtemp(prefix=".lykta-backup-", dir=near))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _anonymous_member(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mode = 0o600
    return info


def take_backup(database_url: str, path: Path) -> Manifest:
    """Write a consistent snapshot of the database to `path` (mode 600); refuse to overwrite a file.

    The archive is written beside `path` and renamed into place once complete, so a backup that failed
    half way never looks like one that succeeded.
    """
    backend = backend_of(database_url)
    path = path.resolve()
    if path.exists():
        raise BackupError(f"{path} exists already; choose a new file name")
    with _private_dir(path.parent) as work:
        payload = work / PAYLOADS[backend]
        if backend == "sqlite":
            revision = _snapshot_sqlite(database_url, payload)
        else:
            revision = _snapshot_postgresql(database_url, payload)
        size, sha256 = _digest(payload)
        manifest = Manifest(
            format=FORMAT,
            backend=backend,
            schema_revision=revision,
            created_at=db.utcnow().isoformat(timespec="seconds"),
            payload=payload.name,
            size=size,
            sha256=sha256,
        )
        archive = work / "backup.tar"
        fd = os.open(archive, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f, tarfile.open(fileobj=f, mode="w", format=tarfile.PAX_FORMAT) as tar:
            raw = manifest.to_json()
            info = tarfile.TarInfo(MANIFEST)
            info.size, info.mode, info.mtime = len(raw), 0o600, int(time.time())
            tar.addfile(info, io.BytesIO(raw))
            tar.add(payload, arcname=payload.name, filter=_anonymous_member)
            f.flush()
            os.fsync(f.fileno())
        if path.exists():
            raise BackupError(f"{path} appeared while the backup was taken; nothing was overwritten")
        os.replace(archive, path)
    return manifest


# -- checking and restoring ------------------------------------------------------------------------------


def _read_manifest(tar: tarfile.TarFile) -> Manifest:
    member = tar.next()
    if member is None or member.name != MANIFEST or not member.isfile() or member.size > _MAX_MANIFEST_BYTES:
        raise RestoreError("not a Lykta backup (no manifest at its start)")
    stream = tar.extractfile(member)
    assert stream is not None  # a regular file member always has a stream
    return Manifest.from_json(stream.read())


def _copy_checked(source: IO[bytes], manifest: Manifest, out: Path) -> None:
    sha256, size = hashlib.sha256(), 0
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        while block := source.read(_CHUNK):
            sha256.update(block)
            size += len(block)
            f.write(block)
        f.flush()
        os.fsync(f.fileno())
    if size != manifest.size or sha256.hexdigest() != manifest.sha256:
        raise RestoreError("the backup is damaged: its database does not match the manifest's checksum")


def unpack(path: Path, work: Path) -> tuple[Manifest, Path]:
    """Check the backup at `path` completely and unpack its database into `work`.

    Only the two expected members are read, by name; nothing in the archive chooses where a file goes.
    """
    try:
        with tarfile.open(path, mode="r:") as tar:
            manifest = _read_manifest(tar)
            member = tar.next()
            if member is None or member.name != manifest.payload or not member.isfile():
                raise RestoreError("the backup is damaged or truncated: its database is missing")
            stream = tar.extractfile(member)
            assert stream is not None
            out = work / manifest.payload
            _copy_checked(stream, manifest, out)
    except FileNotFoundError:
        raise RestoreError(f"there is no file {path}") from None
    except (tarfile.TarError, EOFError, OSError) as error:
        raise RestoreError(f"the backup is damaged or truncated ({error})") from None
    _check_payload(manifest, out)
    _check_revision(manifest.schema_revision)
    return manifest, out


def _check_payload(manifest: Manifest, out: Path) -> None:
    if manifest.backend == "sqlite":
        try:
            conn = sqlite3.connect(f"file:{out}?mode=ro", uri=True)
            try:
                verdict = conn.execute("PRAGMA integrity_check").fetchone()
                revision = conn.execute("SELECT version_num FROM alembic_version").fetchone()
            finally:
                conn.close()
        except sqlite3.Error as error:
            raise RestoreError(f"the backup's database is damaged ({error})") from None
        if verdict is None or verdict[0] != "ok":
            raise RestoreError("the backup's database fails SQLite's integrity check")
        if revision is None or revision[0] != manifest.schema_revision:
            raise RestoreError("the backup's database does not have the schema revision its manifest names")
        return
    result = _run(["pg_restore", "--list", str(out)], error=RestoreError)
    if result.returncode != 0:
        raise RestoreError(f"pg_restore cannot read the backup's dump: {_stderr(result)}")


def _check_revision(revision: str) -> None:
    scripts = ScriptDirectory.from_config(db.alembic_config("sqlite://"))
    try:
        known = scripts.get_revision(revision)
    except CommandError:
        known = None
    if known is None:
        raise RestoreError(
            f"the backup has schema revision {revision!r}, which this version of Lykta does not know: "
            "restore it with the version that took it, or a newer one"
        )


def _sqlite_target_holds_data(target: Path) -> bool:
    return any(p.exists() and p.stat().st_size > 0 for p in (target, Path(f"{target}-wal")))


def _postgresql_tables(database_url: str) -> list[str]:
    engine = db.make_nullpool_engine(database_url)
    try:
        with engine.connect() as conn:
            return list(inspect(conn).get_table_names())
    except Exception as error:  # any driver error: say what it was and change nothing
        raise RestoreError(f"cannot connect to the target database: {error}") from None
    finally:
        engine.dispose()


def _restore_sqlite(target: Path, unpacked: Path) -> None:
    if _sqlite_target_holds_data(target):
        # Only with --force. Fold the old WAL into its database and remove it: a WAL left beside the new
        # file would be replayed into it. The old contents go away in the rename below anyway.
        with contextlib.suppress(sqlite3.Error):
            conn = sqlite3.connect(target, timeout=30)
            try:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                conn.close()
        for leftover in (Path(f"{target}-wal"), Path(f"{target}-shm")):
            leftover.unlink(missing_ok=True)
    staged = target.parent / f".{target.name}.restoring"
    staged.unlink(missing_ok=True)
    shutil.copyfile(unpacked, staged)
    os.chmod(staged, 0o600)
    os.replace(staged, target)  # atomic: the database is the old file or the whole new one


def _restore_postgresql(database_url: str, unpacked: Path, *, replace: bool) -> None:
    uri, env = _libpq(database_url)
    args = ["pg_restore", "--single-transaction", "--exit-on-error", "--no-owner", "--no-privileges"]
    if replace:
        args += ["--clean", "--if-exists"]
    result = _run([*args, f"--dbname={uri}", str(unpacked)], env=env, error=RestoreError)
    if result.returncode != 0:
        raise RestoreError(f"pg_restore failed and changed nothing: {_stderr(result)}")


def restore_backup(path: Path, database_url: str, *, force: bool = False) -> Manifest:
    """Bring the backup at `path` back into the database at `database_url`, then migrate it to this
    version's schema.

    Refuses a target that holds data unless `force`, and checks the whole backup before touching the
    target. Stop every Lykta process using the target first.
    """
    backend = backend_of(database_url)
    if backend == "sqlite":
        target = _sqlite_path(database_url).resolve()
        holds_data = _sqlite_target_holds_data(target)
        where = str(target)
        scratch = target.parent
    else:
        tables = _postgresql_tables(database_url)
        holds_data = bool(tables)
        where = f"the target database ({len(tables)} tables)"
        scratch = Path(tempfile.gettempdir())
    if holds_data and not force:
        raise TargetNotEmptyError(f"{where} holds data already")
    with _private_dir(scratch) as work:
        manifest, unpacked = unpack(path, work)
        if manifest.backend != backend:
            raise RestoreError(
                f"this is a backup of a {manifest.backend} database and the target is {backend}: "
                "set LYKTA_DATABASE_URL to a database of the same kind"
            )
        if backend == "sqlite":
            _restore_sqlite(target, unpacked)
        else:
            _restore_postgresql(database_url, unpacked, replace=holds_data)
    db.upgrade(database_url)
    return manifest

"""Settings, read once from `LYKTA_*` environment variables and the data directory's secrets file.

`Settings` is frozen: the app factory receives one and nothing reads the environment afterwards (STYLE
rule 8). Instance secrets (signing key, reply-code salt, pepper) come from the environment if given, else
from `secrets.json` in the data directory, which `lykta init` writes readable by the service user only.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import secrets
from collections.abc import Mapping
from pathlib import Path

from starlette.config import Config
from starlette.datastructures import Secret

SECRETS_FILE = "secrets.json"
SECRET_NAMES = ("signing_key", "instance_salt", "pepper")
_SECRET_SIZES = {"signing_key": 32, "instance_salt": 16, "pepper": 32}


class SettingsError(Exception):
    """The configuration is incomplete or unsafe; the message says what to do."""


@dataclasses.dataclass(frozen=True)
class InstanceSecrets:
    signing_key: Secret
    instance_salt: bytes
    pepper: Secret

    def __repr__(self) -> str:
        return "InstanceSecrets(...)"


@dataclasses.dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str
    secrets: InstanceSecrets = dataclasses.field(repr=False)
    secure_cookies: bool = False  # set when served over TLS (the onion service speaks plain HTTP to us)
    onion_address: str = ""
    reply_code_concurrency: int = 2  # Argon2id runs at once in this process (64 MiB each)
    followup_attempts_per_minute: int = 30  # global across processes: the reply-code guessing budget
    tipster_idle_minutes: int = 15
    max_upload_bytes: int = 100 * 1024 * 1024  # all files of one tip or one reply together
    max_files: int = 10
    # A request body that stops arriving for this long is refused (a slow-body attack or a dead link).
    body_idle_seconds: float = 30.0
    # A scraper presenting it as `Authorization: Bearer ...` may read /metrics; empty: /metrics is a 404.
    metrics_token: Secret = dataclasses.field(default=Secret(""), repr=False)
    debug: bool = False
    # Staff notifications by e-mail (portal/notify): sent over SMTP with STARTTLS, never in plain text.
    smtp_host: str = ""  # empty: no e-mail is sent, and `lykta notify run` refuses to start
    smtp_port: int = 587
    smtp_username: str = ""
    smtp_password: Secret = dataclasses.field(default=Secret(""), repr=False)
    smtp_from: str = ""
    smtp_ca_file: str = ""  # verify the server's certificate against this CA file instead of the system's
    public_staff_url: str = ""  # the back office as staff reach it, for links in e-mail: https://.../staff/

    @property
    def pepper(self) -> bytes:
        return _decode(str(self.secrets.pepper))

    @property
    def signing_key(self) -> bytes:
        return _decode(str(self.secrets.signing_key))


def _decode(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def generate_secrets() -> dict[str, str]:
    return {
        name: base64.b64encode(secrets.token_bytes(size)).decode() for name, size in _SECRET_SIZES.items()
    }


def write_secrets_file(data_dir: Path) -> Path:
    """Create the data directory and a new secrets file, readable by this user only. Never overwrites."""
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = data_dir / SECRETS_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(generate_secrets(), f, indent=2)
    return path


def _load_secrets(config: Config, data_dir: Path) -> InstanceSecrets:
    values: dict[str, str] = {}
    path = data_dir / SECRETS_FILE
    if path.exists():
        if path.stat().st_mode & 0o077:
            raise SettingsError(f"{path} is readable by other users; run: chmod 600 {path}")
        values.update(json.loads(path.read_text()))
    for name in SECRET_NAMES:
        from_env = config(f"LYKTA_{name.upper()}", cast=str, default="")
        if from_env:
            values[name] = from_env
    missing = [name for name in SECRET_NAMES if name not in values]
    if missing:
        raise SettingsError(f"instance secrets missing ({', '.join(missing)}): run `lykta init` first")
    for name, size in _SECRET_SIZES.items():
        try:
            ok = len(_decode(values[name])) == size
        except ValueError:
            ok = False
        if not ok:
            raise SettingsError(f"LYKTA_{name.upper()} must be {size} bytes in base64")
    return InstanceSecrets(
        signing_key=Secret(values["signing_key"]),
        instance_salt=_decode(values["instance_salt"]),
        pepper=Secret(values["pepper"]),
    )


METRICS_TOKEN_MIN_LENGTH = 32


def _metrics_token(config: Config) -> Secret:
    token = config("LYKTA_METRICS_TOKEN", cast=str, default="").strip()
    if token and (len(token) < METRICS_TOKEN_MIN_LENGTH or not token.isascii() or not token.isprintable()):
        raise SettingsError(
            f"LYKTA_METRICS_TOKEN must be at least {METRICS_TOKEN_MIN_LENGTH} printable ASCII characters: "
            'python3 -c "import secrets; print(secrets.token_urlsafe(32))"'
        )
    return Secret(token)


def data_dir_from(environ: Mapping[str, str]) -> Path:
    return Path(environ.get("LYKTA_DATA_DIR", "./var")).resolve()


def default_database_url(data_dir: Path) -> str:
    return f"sqlite:///{data_dir / 'lykta.sqlite3'}"


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    config = Config(environ=dict(os.environ if environ is None else environ))
    data_dir = data_dir_from(config.environ)
    return Settings(
        data_dir=data_dir,
        database_url=config("LYKTA_DATABASE_URL", cast=str, default=default_database_url(data_dir)),
        secrets=_load_secrets(config, data_dir),
        secure_cookies=config("LYKTA_SECURE_COOKIES", cast=bool, default=False),
        onion_address=config("LYKTA_ONION_ADDRESS", cast=str, default=""),
        reply_code_concurrency=config("LYKTA_REPLY_CODE_CONCURRENCY", cast=int, default=2),
        followup_attempts_per_minute=config("LYKTA_FOLLOWUP_ATTEMPTS_PER_MINUTE", cast=int, default=30),
        max_upload_bytes=config("LYKTA_MAX_UPLOAD_BYTES", cast=int, default=100 * 1024 * 1024),
        body_idle_seconds=config("LYKTA_BODY_IDLE_SECONDS", cast=float, default=30.0),
        debug=config("LYKTA_DEBUG", cast=bool, default=False),
        metrics_token=_metrics_token(config),
        smtp_host=config("LYKTA_SMTP_HOST", cast=str, default=""),
        smtp_port=config("LYKTA_SMTP_PORT", cast=int, default=587),
        smtp_username=config("LYKTA_SMTP_USERNAME", cast=str, default=""),
        smtp_password=Secret(config("LYKTA_SMTP_PASSWORD", cast=str, default="")),
        smtp_from=config("LYKTA_SMTP_FROM", cast=str, default=""),
        smtp_ca_file=config("LYKTA_SMTP_CA_FILE", cast=str, default=""),
        public_staff_url=config("LYKTA_PUBLIC_STAFF_URL", cast=str, default=""),
    )

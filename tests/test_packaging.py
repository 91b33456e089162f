"""A plain (non-editable) install must carry the translation catalogs, or every page is served in English."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from portal import i18n

ROOT = Path(__file__).resolve().parent.parent


def test_the_wheel_carries_every_catalog(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--wheel-dir",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("lykta-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        f"portal/locales/{po.relative_to(ROOT / 'locales')}" for po in ROOT.glob("locales/*/LC_MESSAGES/*.po")
    }
    assert expected, "no catalogs found in locales/"
    assert expected <= names, sorted(expected - names)
    resident = {f"portal/locales/{locale.babel}/LC_MESSAGES/messages.po" for locale in i18n.LOCALES}
    staff = {f"portal/locales/{locale.babel}/LC_MESSAGES/staff.po" for locale in i18n.STAFF_LOCALES}
    # English is the source language and has no catalog of its own.
    assert {name for name in resident | staff if "/en/" not in name} <= names

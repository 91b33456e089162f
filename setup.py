"""Ship the translation catalogs with the package: DESIGN keeps them in the top-level `locales/`, which a
plain (non-editable) install would otherwise leave behind, serving every page in English."""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildWithCatalogs(build_py):
    def run(self) -> None:
        super().run()
        for po in Path("locales").glob("*/LC_MESSAGES/*.po"):
            target = Path(self.build_lib, "portal", po)
            self.mkpath(str(target.parent))
            self.copy_file(str(po), str(target))


setup(cmdclass={"build_py": BuildWithCatalogs})

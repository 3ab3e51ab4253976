"""Rules of the house that a reviewer would otherwise have to check by hand."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(*args):
    return subprocess.run(  # noqa: S603 - fixed arguments, our own tools
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True
    )


class TestCodebase:
    """The code stays within the rules the design sets."""

    def test_library_never_imports_prefect(self):
        code = (
            "import importlib, pkgutil, sys\n"
            "import s1_autotask\n"
            "for m in pkgutil.walk_packages(s1_autotask.__path__, 's1_autotask.'):\n"
            "    importlib.import_module(m.name)\n"
            "print('prefect' in sys.modules)\n"
        )

        result = subprocess.run(  # noqa: S603 - our own interpreter and code
            [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True
        )

        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "False"

    def test_ruff_finds_nothing(self):
        check = run("ruff", "check", ".")
        fmt = run("ruff", "format", "--check", ".")

        assert check.returncode == 0, check.stdout
        assert fmt.returncode == 0, fmt.stdout

    def test_mypy_strict_passes(self):
        result = run("mypy")

        assert result.returncode == 0, result.stdout

"""The package as installed: metadata, one version, ``python -m``, importable without POSIX."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import metadata
from pathlib import Path

import postflow_webhooks

ROOT = Path(__file__).resolve().parents[2]

# Import every module as Windows would: no fcntl, resource or termios (nor pwd, grp).
WITHOUT_POSIX = """
import importlib, pkgutil, sys
for name in ("fcntl", "resource", "termios", "pwd", "grp"):
    sys.modules[name] = None
import postflow_webhooks
failed = []
for found in pkgutil.walk_packages(postflow_webhooks.__path__, "postflow_webhooks."):
    try:
        importlib.import_module(found.name)
    except Exception as exc:
        failed.append(f"{found.name}: {exc!r}")
print("\\n".join(failed) or "all imported")
"""


def test_the_metadata_is_complete_and_the_version_has_one_source() -> None:
    """MIT licence with its file, classifiers, project URLs; the version is __version__."""
    found = metadata("postflow-webhooks")
    assert found["Version"] == postflow_webhooks.__version__
    assert found["License-Expression"] == "MIT"
    assert (ROOT / "LICENSE").read_text(encoding="utf-8").startswith("MIT License")
    classifiers = found.get_all("Classifier") or []
    assert "Operating System :: POSIX :: Linux" in classifiers
    assert "Programming Language :: Python :: 3.11" in classifiers
    urls = " ".join(found.get_all("Project-URL") or [])
    assert "Homepage" in urls and "Documentation" in urls and "Issues" in urls


def python_m(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m postflow_webhooks ARGS``."""
    return subprocess.run(
        [sys.executable, "-m", "postflow_webhooks", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_python_dash_m_runs_the_command() -> None:
    """``python -m postflow_webhooks`` is the ``postflow-webhooks`` command, named as such."""
    version = python_m("--version")
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == f"postflow-webhooks, version {postflow_webhooks.__version__}"
    helped = python_m("-h")
    assert helped.returncode == 0 and "Usage: postflow-webhooks" in helped.stdout


def test_every_module_imports_without_posix_only_modules() -> None:
    """No module imports fcntl, resource or termios at import time (Windows has none)."""
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_POSIX],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "all imported"

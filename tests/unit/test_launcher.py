"""The installed `pyrunc` launcher: -S, its own site dirs, and `site` only as a fallback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import _cffi_backend
import pytest

REPO = Path(__file__).resolve().parents[2]
LAUNCHER = REPO / "pyrunc" / "cli" / "launcher.py"
MARKER = '_SITE_DIRS: "tuple[str, ...]" = ()'


def install_launcher(tmp_path: Path, site_dir: Path) -> Path:
    """The launcher as setup.py writes it, in tmp/bin, pointing at site_dir."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    body = LAUNCHER.read_text().split("\n", 1)[1]
    assert MARKER in body
    rel = (os.path.relpath(site_dir, bin_dir),)
    script = bin_dir / "pyrunc"
    script.write_text(f"#!{sys.executable} -S\n" + body.replace(MARKER, f"_SITE_DIRS = {rel!r}"))
    script.chmod(0o755)
    return script


def run_launcher(script: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    return subprocess.run([str(script), "--version"], capture_output=True, text=True,
                          env={**env, "PYTHONPROFILEIMPORTTIME": "1"}, cwd="/", timeout=60,
                          check=False)


def imported(proc: subprocess.CompletedProcess[str]) -> set[str]:
    return {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines()
            if line.startswith("import time:")}


@pytest.fixture
def site_dir(tmp_path: Path) -> Path:
    """A site dir holding pyrunc (this checkout) and cffi's backend."""
    d = tmp_path / "lib" / "site-packages"
    d.mkdir(parents=True)
    (d / "pyrunc").symlink_to(REPO / "pyrunc")
    backend = Path(_cffi_backend.__file__)
    (d / backend.name).symlink_to(backend)
    return d


def test_launcher_uses_its_site_dir_without_site(tmp_path: Path, site_dir: Path) -> None:
    proc = run_launcher(install_launcher(tmp_path, site_dir))
    assert proc.returncode == 0 and proc.stdout.startswith("pyrunc version"), proc.stderr[-2000:]
    modules = imported(proc)
    assert "pyrunc.cli" in modules
    assert "site" not in modules and "importlib.machinery" not in modules


def test_launcher_falls_back_to_site_without_cffi(tmp_path: Path, site_dir: Path) -> None:
    for entry in site_dir.iterdir():
        if entry.name.startswith("_cffi_backend."):
            entry.unlink()
    proc = run_launcher(install_launcher(tmp_path, site_dir))
    assert "site" in imported(proc)

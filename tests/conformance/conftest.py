"""Conformance fixtures: the static probe and containers that run it on their own config.

The probe (probe.c here) is built once per session with gcc -static.  Each
container gets a private directory bind-mounted read-only at /tmp/oci (under
the config's /tmp tmpfs, so the shared rootfs is never touched) that holds
the probe and the exact config.json of the bundle.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import needs_root

HERE = Path(__file__).resolve().parent
INSIDE = "/tmp/oci"
TAP_LINE = re.compile(r"^(not )?ok (\d+) - (.*)$")

pytestmark = needs_root


@pytest.fixture(scope="session")
def probe_binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/conformance/probe.c, static."""
    out = tmp_path_factory.mktemp("conformance-probe") / "probe"
    proc = subprocess.run(["gcc", "-O2", "-static", "-Wall", "-Wextra", "-Werror", "-o", str(out),
                           str(HERE / "probe.c")], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot build the static probe: {proc.stderr.strip()[-300:]}")
    return out


@dataclass
class TapResult:
    """Parsed probe output."""

    ok: dict[str, bool]
    details: dict[str, str]
    planned: int

    def failures(self) -> list[str]:
        return [f"{name}: {self.details.get(name, '')}" for name, good in self.ok.items()
                if not good]


def parse_tap(text: str) -> TapResult:
    """Lines ``ok N - what`` / ``not ok N - what: detail`` and a final ``1..N``."""
    ok: dict[str, bool] = {}
    details: dict[str, str] = {}
    planned = -1
    for line in text.splitlines():
        if line.startswith("1.."):
            planned = int(line[3:])
            continue
        m = TAP_LINE.match(line)
        if not m:
            continue
        what = m.group(3)
        if m.group(1):
            what, _, detail = what.partition(": ")
            details[what] = detail
        ok[what] = not m.group(1)
    return TapResult(ok, details, planned)


class ProbeRunner:
    """Runs the probe inside containers made from a config."""

    def __init__(self, runtime: Any, bundle: Any, probe: Path, tmp: Path) -> None:
        self.runtime = runtime
        self.bundle = bundle
        self.probe = probe
        self.tmp = tmp
        self.count = 0

    def prepare(self, cfg: dict[str, Any], args: list[str]) -> tuple[Path, dict[str, Any]]:
        """Bundle whose process runs the probe with ARGS; returns (bundle dir, config)."""
        self.count += 1
        share = self.tmp / f"oci{self.count}"
        share.mkdir()
        shutil.copy2(self.probe, share / "probe")
        cfg = json.loads(json.dumps(cfg))
        mounts = cfg.setdefault("mounts", [])
        if not any(m.get("destination") == "/tmp" for m in mounts):
            mounts.append({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
                           "options": ["nosuid", "nodev", "mode=1777"]})
        mounts.append({"destination": INSIDE, "type": "bind", "source": str(share),
                       "options": ["bind", "ro"]})
        cfg["process"]["args"] = [f"{INSIDE}/probe", *args]
        (share / "config.json").write_text(json.dumps(cfg))
        return self.bundle(config=cfg), cfg

    def check(self, cfg: dict[str, Any]) -> TapResult:
        """`probe check` of the container's own config; the run must succeed."""
        path, _ = self.prepare(cfg, ["check", f"{INSIDE}/config.json"])
        proc = self.runtime("run", "-b", str(path), self.runtime.new_id())
        out = proc.stdout.decode()
        result = parse_tap(out)
        assert result.planned > 0, f"no probe output ({proc.returncode}): {proc.stderr!r}"
        return result

    def attrs(self, cfg: dict[str, Any]) -> dict[str, str]:
        """`probe attrs` as a dict of first word -> rest of the line."""
        path, _ = self.prepare(cfg, ["attrs"])
        proc = self.runtime("run", "-b", str(path), self.runtime.new_id())
        assert proc.returncode == 0, proc.stderr.decode()
        return parse_attrs(proc.stdout.decode())


def parse_attrs(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        out[key] = value
    return out


@pytest.fixture
def probe(runtime: Any, bundle: Any, probe_binary: Path, tmp_path: Path) -> ProbeRunner:
    """A ProbeRunner bound to this test's runtime and bundles."""
    return ProbeRunner(runtime, bundle, probe_binary, tmp_path)

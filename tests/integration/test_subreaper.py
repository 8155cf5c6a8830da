"""The shim process model: runtime exits, the shim (a subreaper) reaps the container."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import REPO, needs_root, runtime_argv, runtime_env

pytestmark = needs_root


def test_shim_lifecycle_with_pipes(runtime, bundle, tmp_path):
    cid = runtime.new_id()
    b = bundle(["sh", "-c", "read l; echo init-got:$l; exec sleep 1000"])
    work = tmp_path / "work"
    work.mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "tests.helpers.subreaper", json.dumps(runtime_argv()),
         str(runtime.root), str(b), cid, str(work)],
        cwd=REPO, env=runtime_env(), capture_output=True, timeout=120, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert "exception" not in report and "errors" not in report, report
    assert report["create"] == report["start"] == report["exec"] == 0
    assert report["kill"] == report["delete"] == 0
    # Both processes were re-parented to the shim when the runtime exited.
    assert report["init_parent"] == report["self"]
    assert report["exec_parent"] == report["self"]
    assert report["exec_status"] == 7
    assert report["exec_stdout"] == "exec-got:ping\n"
    assert report["init_first_line"] == "init-got:from-shim"
    assert report["init_status"] == 128 + 9
    assert not (runtime.root / cid).exists()

"""process.apparmorProfile and `exec --apparmor` on a host with AppArmor (the VM lane).

A test profile that denies writes below /tmp is loaded with apparmor_parser;
the container's processes show it as their current label and are refused
the write, while an unconfined container makes it.  The profile takes effect
at the container process's execve (change_onexec), as with runc.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.conftest import OTHER_RUNTIME, cgroup_dirs_named, needs_root, processes_with


def _apparmor_enabled() -> bool:
    try:
        return Path("/sys/module/apparmor/parameters/enabled").read_text().strip() == "Y"
    except OSError:
        return False


pytestmark = [
    needs_root,
    pytest.mark.skipif(not _apparmor_enabled(), reason="AppArmor is not enabled on this host "
                       "(runs in the VM lane: tests/vm/lane.py)"),
    pytest.mark.skipif(shutil.which("apparmor_parser") is None,
                       reason="apparmor_parser is not installed"),
]

# Everything a busybox shell needs, but no writes below /tmp.
PROFILE = """
profile {name} flags=(attach_disconnected,mediate_deleted) {{
  file,
  capability,
  network,
  signal,
  ptrace,
  mount,
  umount,
  pivot_root,
  deny /tmp/** w,
}}
"""

# Write below /tmp, then print the label; the write's outcome is the last line.
PROBE = ("cat /proc/self/attr/current; echo; "
         "if echo x > /tmp/probe; then echo wrote; else echo denied; fi")



@pytest.fixture(scope="module")
def profile(tmp_path_factory: pytest.TempPathFactory):
    """A loaded test profile's name; it is unloaded afterwards."""
    name = f"pyrunc-test-{uuid.uuid4().hex[:8]}"
    path = tmp_path_factory.mktemp("apparmor") / name
    path.write_text(PROFILE.format(name=name))
    subprocess.run(["apparmor_parser", "-r", str(path)], check=True, capture_output=True)
    try:
        yield name
    finally:
        subprocess.run(["apparmor_parser", "-R", str(path)], check=False, capture_output=True)


def run_probe(runtime, bundle, profile_name: str | None):
    cfg = bundle.config(["sh", "-c", PROBE])
    if profile_name is not None:
        cfg["process"]["apparmorProfile"] = profile_name
    return runtime("run", "-b", str(bundle(config=cfg)), runtime.new_id())


def lines(proc) -> list[str]:
    return [line.strip() for line in proc.stdout.decode().splitlines() if line.strip()]


def test_container_runs_under_the_profile(runtime, bundle, profile):
    proc = run_probe(runtime, bundle, profile)
    assert proc.returncode == 0, proc.stderr
    out = lines(proc)
    assert out[0] == f"{profile} (enforce)", out
    assert out[-1] == "denied", out


def test_unconfined_container_can_write(runtime, bundle, profile):
    proc = run_probe(runtime, bundle, None)
    assert proc.returncode == 0, proc.stderr
    out = lines(proc)
    assert out[0] == "unconfined", out
    assert out[-1] == "wrote", out


def test_explicit_unconfined_profile(runtime, bundle, profile):
    proc = run_probe(runtime, bundle, "unconfined")
    assert proc.returncode == 0, proc.stderr
    assert lines(proc)[-1] == "wrote"


def started(runtime, bundle, profile_name: str | None) -> str:
    cfg = bundle.config(["sleep", "1000"])
    if profile_name is not None:
        cfg["process"]["apparmorProfile"] = profile_name
    cid = runtime.new_id()
    runtime("run", "-d", "-b", str(bundle(config=cfg)), cid, check=True)
    return cid


def test_exec_with_the_apparmor_flag(runtime, bundle, profile):
    cid = started(runtime, bundle, None)
    plain = runtime("exec", cid, "sh", "-c", PROBE)
    assert plain.returncode == 0, plain.stderr
    assert lines(plain)[0] == "unconfined" and lines(plain)[-1] == "wrote"
    confined = runtime("exec", "--apparmor", profile, cid, "sh", "-c", PROBE)
    assert confined.returncode == 0, confined.stderr
    assert lines(confined)[0] == f"{profile} (enforce)"
    assert lines(confined)[-1] == "denied"


def test_exec_process_json_profile(runtime, bundle, profile, tmp_path):
    cid = started(runtime, bundle, None)
    process = {"args": ["sh", "-c", PROBE], "cwd": "/", "env": ["PATH=/bin"],
               "user": {"uid": 0, "gid": 0}, "apparmorProfile": profile}
    path = tmp_path / "process.json"
    path.write_text(json.dumps(process))
    proc = runtime("exec", "-p", str(path), cid)
    assert proc.returncode == 0, proc.stderr
    assert lines(proc)[0] == f"{profile} (enforce)" and lines(proc)[-1] == "denied"


def test_exec_gets_the_container_profile_by_default(runtime, bundle, profile):
    cid = started(runtime, bundle, profile)
    proc = runtime("exec", cid, "sh", "-c", PROBE)
    assert proc.returncode == 0, proc.stderr
    assert lines(proc)[0] == f"{profile} (enforce)" and lines(proc)[-1] == "denied"


RUNC_P_UNCONFINED = ("runc 1.1.5 runs an `exec -p` process without a profile unconfined; "
                     "pyrunc gives it the container's (libcontainer's newInitConfig default)")


def test_exec_process_json_without_profile_gets_the_container_one(runtime, bundle, profile,
                                                                  tmp_path):
    if OTHER_RUNTIME:
        pytest.xfail(RUNC_P_UNCONFINED)
    cid = started(runtime, bundle, profile)
    process = {"args": ["sh", "-c", PROBE], "cwd": "/", "env": ["PATH=/bin"],
               "user": {"uid": 0, "gid": 0}}
    path = tmp_path / "process.json"
    path.write_text(json.dumps(process))
    proc = runtime("exec", "-p", str(path), cid)
    assert proc.returncode == 0, proc.stderr
    assert lines(proc)[0] == f"{profile} (enforce)" and lines(proc)[-1] == "denied"


def test_profile_not_loaded_is_one_line_and_leaves_nothing(runtime, bundle):
    missing = f"pyrunc-test-missing-{uuid.uuid4().hex[:8]}"
    cfg = bundle.config(["true"])
    cfg["process"]["apparmorProfile"] = missing
    b = bundle(config=cfg)
    cid = runtime.new_id()
    proc = runtime("create", "-b", str(b), cid)
    err = proc.stderr.decode()
    assert proc.returncode == 1, err
    assert len(err.splitlines()) == 1, err
    if not OTHER_RUNTIME:
        assert err.strip() == f'process.apparmorProfile: AppArmor profile "{missing}" is not loaded'
    else:
        assert "apparmor" in err
    assert runtime("state", cid).returncode != 0
    assert not (runtime.root / cid).exists()
    assert cgroup_dirs_named(cid) == []
    assert processes_with(cid) == []
    # The id is free again.
    good = bundle.config(["true"])
    assert runtime("run", "-b", str(bundle(config=good)), cid).returncode == 0


def assert_exec_refused_for(proc, profile: str) -> str:
    """A refused exec: one stderr line; for pyrunc runc's 255 and "exec failed:" prefix."""
    err = proc.stderr.decode()
    assert proc.returncode != 0
    assert len(err.splitlines()) == 1, err
    if not OTHER_RUNTIME:
        assert proc.returncode == 255
        assert err.strip() == ("exec failed: process.apparmorProfile: AppArmor profile "
                               f'"{profile}" is not loaded')
    return err


def test_exec_profile_not_loaded(runtime, bundle):
    missing = f"pyrunc-test-missing-{uuid.uuid4().hex[:8]}"
    cid = started(runtime, bundle, None)
    proc = runtime("exec", "--apparmor", missing, cid, "true")
    assert_exec_refused_for(proc, missing)
    # The container goes on running, alone.
    assert runtime.state(cid)["status"] == "running"
    ps = runtime("ps", "--format", "json", cid)
    assert ps.returncode == 0 and len(json.loads(ps.stdout)) == 1, ps.stdout


def test_profile_unloaded_before_exec_is_reported_from_the_write(runtime, bundle, tmp_path):
    """The kernel's refusal (the profile went away after create) is the same one line.

    The process.json has no profile: the container's is used, and only the
    write in the container can find it missing.
    """
    if OTHER_RUNTIME:
        pytest.xfail(RUNC_P_UNCONFINED)
    name = f"pyrunc-test-gone-{uuid.uuid4().hex[:8]}"
    path = tmp_path / name
    path.write_text(PROFILE.format(name=name))
    subprocess.run(["apparmor_parser", "-r", str(path)], check=True, capture_output=True)
    try:
        cid = started(runtime, bundle, name)
    finally:
        subprocess.run(["apparmor_parser", "-R", str(path)], check=True, capture_output=True)
    process = {"args": ["true"], "cwd": "/", "env": ["PATH=/bin"], "user": {"uid": 0, "gid": 0}}
    (tmp_path / "process.json").write_text(json.dumps(process))
    proc = runtime("exec", "-p", str(tmp_path / "process.json"), cid)
    err = assert_exec_refused_for(proc, name)
    if OTHER_RUNTIME:
        assert "apparmor" in err

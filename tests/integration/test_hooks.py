"""OCI hooks observed from the hooks themselves: when, where, with what, and failures.

Every hook is `/bin/sh -c RECORD sh <name> <dir>`: it appends its name to
<dir>/order and keeps its stdin (the state), argv, env, fds and namespaces in
<dir>/<name>.*.  <dir> is a host temp dir bind-mounted at /hooklog, so the
hooks that run after pivot_root (startContainer, with the container's
busybox sh) write to the same place as those that run on the host.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import cgroup_dirs_named, needs_root, processes_with, runc_differs

pytestmark = needs_root

RECORD = r"""
name=$1; dir=$2
ls -l /proc/self/fd > "$dir/$name.fds"
cat > "$dir/$name.state"
echo "$name" >> "$dir/order"
for a in "$@"; do echo "$a"; done > "$dir/$name.argv"
env > "$dir/$name.env"
for ns in mnt pid net uts ipc cgroup; do echo "$ns $(readlink /proc/self/ns/$ns)"; done \
    > "$dir/$name.ns"
"""

KINDS = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")
# startContainer runs inside the container's root: its directory is /hooklog.
INSIDE = {"startContainer"}

ORACLE = Path(__file__).resolve().parents[2].parent / "shared" / "oci-runtime-spec" / "schema"


def recorder(kind: str, logdir: Path, extra: str = "", **fields: Any) -> dict[str, Any]:
    where = "/hooklog" if kind in INSIDE else str(logdir)
    hook: dict[str, Any] = {"path": "/bin/sh",
                            "args": ["sh", "-c", RECORD + extra, "sh", kind, where],
                            "env": [f"HOOK_KIND={kind}", "PATH=/usr/sbin:/usr/bin:/sbin:/bin"]}
    hook.update(fields)
    return hook


def hooked_config(bundle: Any, logdir: Path, args: list[str],
                  hooks: dict[str, list[dict[str, Any]]] | None = None) -> dict[str, Any]:
    cfg = bundle.config(args)
    cfg["mounts"].append({"destination": "/hooklog", "type": "bind", "source": str(logdir),
                          "options": ["rbind", "rw"]})
    cfg["hooks"] = hooks if hooks is not None else {k: [recorder(k, logdir)] for k in KINDS}
    cfg["annotations"] = {"org.example.hooks": "yes"}
    return cfg


def order(logdir: Path) -> list[str]:
    path = logdir / "order"
    return path.read_text().split() if path.exists() else []


def ns_of(path: Path) -> dict[str, str]:
    return dict(line.split(" ", 1) for line in path.read_text().splitlines())


def proc_ns(pid: int | str) -> dict[str, str]:
    return {ns: os.readlink(f"/proc/{pid}/ns/{ns}")
            for ns in ("mnt", "pid", "net", "uts", "ipc", "cgroup")}


def inherited_fds(listing: Path) -> set[int]:
    """Fds of `ls -l /proc/self/fd` (run by the hook: it inherits the hook's
    fds), leaving out ls's own directory fd and copies of 0-2."""
    links = {}
    for line in listing.read_text().splitlines():
        if " -> " in line:
            left, target = line.split(" -> ", 1)
            links[int(left.split()[-1])] = target
    stdio = {links.get(fd) for fd in (0, 1, 2)}
    return {fd for fd, target in links.items()
            if fd < 3 or (target not in stdio and not target.startswith("/proc/"))}


def wait_until(cond: Any, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.02)
    return bool(cond())


def nothing_left(runtime: Any, cid: str) -> None:
    assert not (runtime.root / cid).exists()
    assert cgroup_dirs_named(cid) == []
    assert processes_with(cid) == []


@pytest.fixture
def logdir(tmp_path: Path) -> Path:
    d = tmp_path / "hooklog"
    d.mkdir()
    return d


@runc_differs("runc 1.1.5 runs poststart hooks in create (runc 1.2: after start)")
def test_hooks_run_in_order_in_their_namespaces_with_the_state(runtime, bundle, logdir):
    cfg = hooked_config(bundle, logdir, ["sh", "-c", "echo process >> /hooklog/order; sleep 100"])
    b = bundle(config=cfg)
    cid = runtime.new_id()
    runtime("create", "--bundle", str(b), cid, check=True)
    assert order(logdir) == ["prestart", "createRuntime", "createContainer"]
    pid = runtime.state(cid)["pid"]
    runtime("start", cid, check=True)
    assert wait_until(lambda: len(order(logdir)) >= 6)
    got = order(logdir)
    assert got[:4] == ["prestart", "createRuntime", "createContainer", "startContainer"]
    assert sorted(got[4:]) == ["poststart", "process"]
    host, container = proc_ns("self"), proc_ns(pid)
    runtime("kill", cid, "KILL", check=True)
    assert wait_until(lambda: runtime.state(cid)["status"] == "stopped")
    runtime("delete", cid, check=True)
    assert order(logdir)[-1] == "poststop"

    for kind in KINDS:
        seen = ns_of(logdir / f"{kind}.ns")
        expected = container if kind in ("createContainer", "startContainer") else host
        assert seen == expected, kind
    statuses = {"prestart": "creating", "createRuntime": "creating",
                "createContainer": "creating", "startContainer": "created",
                "poststart": "running", "poststop": "stopped"}
    for kind in KINDS:
        state = json.loads((logdir / f"{kind}.state").read_text())
        assert state["status"] == statuses[kind], kind
        assert state["id"] == cid
        assert state["bundle"] == str(b)
        assert state["annotations"] == {"org.example.hooks": "yes"}
        if kind == "poststop":
            assert state.get("pid", 0) == 0
        else:
            assert state["pid"] == pid, kind
        argv = (logdir / f"{kind}.argv").read_text().split("\n")
        assert argv[:2] == [kind, "/hooklog" if kind in INSIDE else str(logdir)]
        env = dict(line.split("=", 1) for line in
                   (logdir / f"{kind}.env").read_text().splitlines() if "=" in line)
        assert env["HOOK_KIND"] == kind
        assert "PYRUNC_SYNC_FD" not in env and "PYTHONPATH" not in env, kind
        assert inherited_fds(logdir / f"{kind}.fds") == {0, 1, 2}, kind


def test_hook_state_validates_against_the_official_schema(runtime, bundle, logdir):
    if not ORACLE.is_dir():
        pytest.skip("official runtime-spec schemas not available")
    from jsonschema import Draft4Validator
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT4

    resources = [(p.as_uri(), Resource.from_contents(json.loads(p.read_text()), DRAFT4))
                 for p in ORACLE.glob("*.json")]
    validator = Draft4Validator({"$ref": (ORACLE / "state-schema.json").as_uri()},
                                registry=Registry().with_resources(resources))
    b = bundle(config=hooked_config(bundle, logdir, ["true"]))
    cid = runtime.new_id()
    assert runtime("run", "--bundle", str(b), cid).returncode == 0
    for kind in KINDS:
        validator.validate(json.loads((logdir / f"{kind}.state").read_text()))


@runc_differs("runc 1.1.5 gives a hook without env runc's own environment")
def test_hook_args_default_to_the_path_and_env_is_exactly_the_hooks(runtime, bundle, logdir, tmp_path):
    script = tmp_path / "noargs.sh"
    script.write_text(f"#!/bin/sh\necho \"$0 $#\" > {logdir}/argv\nenv > {logdir}/env\n")
    script.chmod(0o755)
    cfg = hooked_config(bundle, logdir, ["true"], {"createRuntime": [{"path": str(script)}],
                                                  "createContainer": [{"path": str(script)}]})
    b = bundle(config=cfg)
    assert runtime("run", "--bundle", str(b), runtime.new_id()).returncode == 0
    assert (logdir / "argv").read_text().split() == [str(script), "0"]
    names = {line.split("=", 1)[0] for line in (logdir / "env").read_text().splitlines()}
    assert names <= {"PWD", "SHLVL", "_", "OLDPWD"}


@runc_differs("runc 1.1.5 says 'error running hook #0' without the hook's kind")
@pytest.mark.parametrize("kind", ["prestart", "createRuntime", "createContainer"])
def test_failing_create_hook_fails_create_and_leaves_nothing(runtime, bundle, logdir, kind):
    hooks = {k: [recorder(k, logdir)] for k in KINDS}
    hooks[kind] = [recorder(kind, logdir, "echo broken-$1 >&2; exit 3")]
    b = bundle(config=hooked_config(bundle, logdir, ["true"], hooks))
    cid = runtime.new_id()
    proc = runtime("create", "--bundle", str(b), cid)
    assert proc.returncode == 1
    lines = proc.stderr.decode().splitlines()
    errors = [line for line in lines if not line.startswith("warning")]
    assert len(errors) == 1, lines
    assert f"{kind} hook #0" in errors[0] and "exit status 3" in errors[0]
    assert f"broken-{kind}" in errors[0]
    nothing_left(runtime, cid)
    # The destroyed container still gets its poststop hooks; nothing runs after the failure.
    got = order(logdir)
    assert got[-1] == "poststop" and got[-2] == kind
    assert "startContainer" not in got


@runc_differs("runc 1.1.5 runs startContainer hooks in the init after start returned 0")
def test_failing_start_container_hook_fails_start(runtime, bundle, logdir):
    hooks = {k: [recorder(k, logdir)] for k in KINDS}
    hooks["startContainer"] = [recorder("startContainer", logdir, "echo nope >&2; exit 4")]
    b = bundle(config=hooked_config(bundle, logdir, ["sh", "-c", "echo process >> /hooklog/order"],
                                    hooks))
    cid = runtime.new_id()
    runtime("create", "--bundle", str(b), cid, check=True)
    proc = runtime("start", cid)
    assert proc.returncode == 1
    line = proc.stderr.decode().strip()
    assert "\n" not in line
    assert "startContainer hook #0" in line and "exit status 4" in line and "nope" in line
    assert runtime.state(cid)["status"] == "stopped"
    assert "process" not in order(logdir) and "poststart" not in order(logdir)
    runtime("delete", cid, check=True)
    nothing_left(runtime, cid)
    assert order(logdir)[-1] == "poststop"


@runc_differs("runc 1.1.5 runs poststart hooks in create (runc 1.2: after start)")
def test_failing_poststart_hook_fails_start_and_stops_the_container(runtime, bundle, logdir):
    hooks = {"poststart": [recorder("poststart", logdir, "exit 5")]}
    b = bundle(config=hooked_config(bundle, logdir, ["sleep", "100"], hooks))
    cid = runtime.new_id()
    runtime("create", "--bundle", str(b), cid, check=True)
    proc = runtime("start", cid)
    assert proc.returncode == 1
    assert "poststart hook #0" in proc.stderr.decode()
    assert len(proc.stderr.decode().strip().splitlines()) == 1
    assert runtime.state(cid)["status"] == "stopped"
    runtime("delete", cid, check=True)
    nothing_left(runtime, cid)


@runc_differs("runc 1.1.5 stops at the first failing poststop hook")
def test_failing_poststop_hook_is_a_warning(runtime, bundle, logdir, tmp_path):
    hooks = {"poststop": [recorder("poststop", logdir, "exit 6"), recorder("second", logdir)]}
    b = bundle(config=hooked_config(bundle, logdir, ["true"], hooks))
    cid = runtime.new_id()
    runtime("create", "--bundle", str(b), cid, check=True)
    runtime("start", cid, check=True)
    assert wait_until(lambda: runtime.state(cid)["status"] == "stopped")
    log = tmp_path / "log.json"
    proc = runtime("delete", cid, log=str(log))
    assert proc.returncode == 0, proc.stderr
    nothing_left(runtime, cid)
    assert order(logdir) == ["poststop", "second"]
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    assert [e["level"] for e in entries] == ["warning"]
    assert "poststop hook #0" in entries[0]["msg"] and "exit status 6" in entries[0]["msg"]


@runc_differs("runc 1.1.5 waits for the timed-out hook's children that hold its output")
@pytest.mark.parametrize("kind", ["createRuntime", "createContainer"])
def test_hook_timeout_kills_it_and_fails(runtime, bundle, logdir, kind, tmp_path):
    cid = runtime.new_id()
    # The hook overruns in a `sleep` reached through a path in this test's
    # own temp dir: that path is on the command line of the sleep and of the
    # hook's shell (in its -c script), and on no other process's, whatever
    # else runs on the host.  (Not the container id: nothing_left's check
    # for it must not wait on the hook's reaping.)
    sleeper = tmp_path / "hookbin" / "sleep"
    sleeper.parent.mkdir()
    sleeper.symlink_to(shutil.which("sleep") or "/bin/sleep")
    hooks = {kind: [recorder(kind, logdir, f"'{sleeper}' 30", timeout=1)]}
    b = bundle(config=hooked_config(bundle, logdir, ["true"], hooks))
    t0 = time.monotonic()
    proc = runtime("create", "--bundle", str(b), cid)
    assert time.monotonic() - t0 < 15
    assert proc.returncode == 1
    assert "timed out" in proc.stderr.decode()
    nothing_left(runtime, cid)
    assert wait_until(lambda: processes_with(str(sleeper)) == [], 10), processes_with(str(sleeper))


@runc_differs("runc 1.1.5 runs startContainer hooks in the init after start returned 0")
def test_start_container_hook_timeout(runtime, bundle, logdir):
    hooks = {"startContainer": [recorder("startContainer", logdir, "sleep 30", timeout=1)]}
    b = bundle(config=hooked_config(bundle, logdir, ["true"], hooks))
    cid = runtime.new_id()
    runtime("create", "--bundle", str(b), cid, check=True)
    proc = runtime("start", cid)
    assert proc.returncode == 1
    assert "timed out" in proc.stderr.decode()
    runtime("delete", cid, check=True)
    nothing_left(runtime, cid)


def test_missing_hook_binary_fails_create(runtime, bundle, logdir):
    for kind in ("createRuntime", "createContainer"):
        b = bundle(config=hooked_config(bundle, logdir, ["true"],
                                        {kind: [{"path": "/nonexistent/hook"}]}))
        cid = runtime.new_id()
        proc = runtime("create", "--bundle", str(b), cid)
        assert proc.returncode == 1
        assert "/nonexistent/hook" in proc.stderr.decode()
        nothing_left(runtime, cid)

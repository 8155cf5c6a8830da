"""`exec` with every runc flag, observed from inside real containers."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import OTHER_RUNTIME, needs_root, runc_differs, runtime_env

pytestmark = needs_root

CAP_KILL, CAP_NET_BIND_SERVICE, CAP_NET_ADMIN, CAP_NET_RAW, CAP_AUDIT_WRITE = 5, 10, 12, 13, 29


def started(runtime, bundle, config=None) -> str:
    """A running container whose process sleeps."""
    cfg = config or bundle.config(["sleep", "1000"])
    cid = runtime.new_id()
    runtime("run", "-d", "-b", str(bundle(config=cfg)), cid, check=True)
    return cid


def sh(runtime, cid, script, *flags):
    return runtime("exec", *flags, cid, "sh", "-c", script)


def status_caps(text: bytes) -> dict[str, int]:
    caps = {}
    for line in text.decode().splitlines():
        if line.startswith("Cap"):
            name, value = line.split(":")
            caps[name] = int(value.strip(), 16)
    return caps


def test_exit_status_and_output(runtime, bundle):
    cid = started(runtime, bundle)
    proc = sh(runtime, cid, "echo out; echo err >&2; exit 5")
    assert (proc.returncode, proc.stdout, proc.stderr) == (5, b"out\n", b"err\n")


def test_killed_by_signal_is_128_plus_signal(runtime, bundle):
    cid = started(runtime, bundle)
    assert sh(runtime, cid, "kill -TERM $$").returncode == 128 + 15
    assert sh(runtime, cid, "kill -KILL $$").returncode == 128 + 9


def test_stdin_reaches_the_process(runtime, bundle):
    cid = started(runtime, bundle)
    proc = runtime("exec", cid, "sh", "-c", "read l; echo got:$l", input=b"abc\n")
    assert proc.stdout == b"got:abc\n", proc.stderr


def test_joins_every_namespace_and_the_cgroup(runtime, bundle):
    cid = started(runtime, bundle)
    init = runtime.state(cid)["pid"]
    names = ["mnt", "pid", "net", "ipc", "uts", "cgroup"]
    proc = sh(runtime, cid, "for n in " + " ".join(names) + "; do readlink /proc/self/ns/$n; done;"
              " echo pid:$$; cat /proc/1/cmdline; echo; cat /proc/self/cgroup")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.decode().splitlines()
    for name, line in zip(names, lines):
        if os.path.exists(f"/proc/{init}/ns/{name}"):
            assert line == os.readlink(f"/proc/{init}/ns/{name}"), name
    assert lines[len(names)] != "pid:1"
    assert lines[len(names) + 1].startswith("sleep")
    inside = sorted(lines[len(names) + 2:])
    init_cg = sorted(sh(runtime, cid, "cat /proc/1/cgroup").stdout.decode().splitlines())
    assert inside == init_cg


def test_exec_runs_the_extra_fork_inside_the_pid_namespace(runtime, bundle, tmp_path):
    cid = started(runtime, bundle)
    pid_file = tmp_path / "exec.pid"
    runtime("exec", "-d", "--pid-file", str(pid_file), cid, "sleep", "100", check=True)
    pid = int(pid_file.read_text())
    nspid = [ln for ln in Path(f"/proc/{pid}/status").read_text().splitlines()
             if ln.startswith("NSpid:")][0].split()[1:]
    assert len(nspid) == 2 and nspid[1] != "1"
    assert Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"sleep")


def test_user_uid_only_keeps_the_spec_gid(runtime, bundle):
    cfg = bundle.config(["sleep", "1000"])
    cfg["process"]["user"] = {"uid": 0, "gid": 3}
    cid = started(runtime, bundle, cfg)
    assert sh(runtime, cid, "id -u; id -g", "-u", "1").stdout == b"1\n3\n"
    assert sh(runtime, cid, "id -u; id -g", "--user", "1:2").stdout == b"1\n2\n"
    assert sh(runtime, cid, "id -u", "-u", "0").stdout == b"0\n"


def test_additional_gids(runtime, bundle):
    cid = started(runtime, bundle)
    # runc's flag parser refuses the short and long form of one flag in one command.
    proc = sh(runtime, cid, "id -G", "-u", "1:1", "-g", "7", "-g", "8")
    assert set(proc.stdout.split()) == {b"1", b"7", b"8"}, proc.stderr
    proc = sh(runtime, cid, "id -G", "--user", "1:1", "--additional-gids", "7", "--additional-gids", "9")
    assert set(proc.stdout.split()) == {b"1", b"7", b"9"}, proc.stderr


def test_cwd_and_env(runtime, bundle):
    cid = started(runtime, bundle)
    proc = sh(runtime, cid, "pwd; echo $FOO $TERM", "--cwd", "/tmp", "-e", "FOO=bar",
              "-e", "TERM=dumb")
    assert proc.stdout == b"/tmp\nbar dumb\n", proc.stderr
    proc = sh(runtime, cid, "echo $FOO $TERM", "--env", "FOO=baz", "--env", "TERM=vt100")
    assert proc.stdout == b"baz vt100\n", proc.stderr


def test_cap_never_reaches_inheritable_or_ambient(runtime, bundle):
    # CVE-2022-29162: --cap goes to bounding, effective and permitted only.
    cid = started(runtime, bundle)
    caps = status_caps(sh(runtime, cid, "grep Cap /proc/self/status",
                          "--cap", "CAP_NET_ADMIN", "--cap", "CAP_NET_RAW").stdout)
    for bit in (CAP_NET_ADMIN, CAP_NET_RAW):
        assert caps["CapBnd"] >> bit & 1 and caps["CapEff"] >> bit & 1
    assert caps["CapInh"] == 0 and caps["CapAmb"] == 0
    plain = status_caps(sh(runtime, cid, "grep Cap /proc/self/status").stdout)
    assert not plain["CapBnd"] >> CAP_NET_ADMIN & 1


def test_cap_ambient_only_where_the_spec_grants_inheritable(runtime, bundle):
    cfg = bundle.config(["sleep", "1000"])
    caps = cfg["process"]["capabilities"]
    caps["inheritable"] = ["CAP_NET_RAW"]
    caps["bounding"].append("CAP_NET_RAW")
    caps["permitted"].append("CAP_NET_RAW")
    cid = started(runtime, bundle, cfg)
    got = status_caps(sh(runtime, cid, "grep Cap /proc/self/status", "-u", "1",
                         "--cap", "CAP_NET_RAW", "--cap", "CAP_NET_ADMIN").stdout)
    assert got["CapInh"] == 1 << CAP_NET_RAW
    assert got["CapAmb"] == 1 << CAP_NET_RAW
    # A non-root process keeps only what is ambient across execve.
    assert got["CapEff"] == 1 << CAP_NET_RAW


def test_no_new_privs(runtime, bundle):
    cfg = bundle.config(["sleep", "1000"])
    cfg["process"]["noNewPrivileges"] = False
    cid = started(runtime, bundle, cfg)
    assert sh(runtime, cid, "grep NoNewPrivs /proc/self/status").stdout.split()[-1] == b"0"
    out = sh(runtime, cid, "grep NoNewPrivs /proc/self/status", "--no-new-privs").stdout
    assert out.split()[-1] == b"1"


def test_rlimits_of_the_spec(runtime, bundle):
    cid = started(runtime, bundle)
    assert sh(runtime, cid, "ulimit -n").stdout == b"1024\n"


def test_process_json(runtime, bundle, tmp_path):
    cid = started(runtime, bundle)
    process = {"args": ["sh", "-c", "id -u; pwd; echo $X; exit 9"], "cwd": "/etc",
               "env": ["PATH=/bin", "X=from-json"], "user": {"uid": 1, "gid": 1},
               "terminal": False}
    path = tmp_path / "process.json"
    path.write_text(json.dumps(process))
    # Command-line overrides do not apply with -p (runc ignores them too).
    proc = runtime("exec", "-p", str(path), "-u", "0", cid)
    assert proc.returncode == 9
    assert proc.stdout == b"1\n/etc\nfrom-json\n", proc.stderr


def test_process_json_invalid(runtime, bundle, tmp_path):
    cid = started(runtime, bundle)
    path = tmp_path / "process.json"
    path.write_text(json.dumps({"cwd": "/"}))
    proc = runtime("exec", "--process", str(path), cid)
    assert proc.returncode == 255 and b"args" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def _cgroup_dirs_of(pid: int) -> dict[str, str]:
    """controller ("" for cgroup2) -> host directory of pid's cgroup, one
    entry per distinct directory."""
    from tests.helpers.cgroupfs import CgroupFiles

    found: dict[str, str] = {}
    for ctrl, d in CgroupFiles(pid).dirs.items():
        if d.is_dir() and str(d) not in found.values():
            found[ctrl] = str(d)
    return found


def test_cgroup_sub_cgroup(runtime, bundle):
    cid = started(runtime, bundle)
    init = runtime.state(cid)["pid"]
    dirs = _cgroup_dirs_of(init)
    made = []
    try:
        for d in dirs.values():
            sub = os.path.join(d, "sub")
            if not os.path.isdir(sub):
                os.mkdir(sub)
                made.append(sub)
            for knob in ("cpuset.cpus", "cpuset.mems"):
                # A new v1 cpuset starts empty: no task could join it.
                if os.path.exists(os.path.join(sub, knob)):
                    Path(sub, knob).write_text(Path(d, knob).read_text())
        proc = sh(runtime, cid, "cat /proc/self/cgroup", "--cgroup", "sub")
        assert proc.returncode == 0, proc.stderr
        lines = proc.stdout.decode().splitlines()
        assert lines and all(ln.endswith("/sub") for ln in lines), lines
        if "memory" in dirs:
            proc = sh(runtime, cid, "cat /proc/self/cgroup", "--cgroup", "memory:sub")
            for ln in proc.stdout.decode().splitlines():
                controllers = ln.split(":")[1].split(",")
                assert ln.endswith("/sub") == ("memory" in controllers), ln
        proc = sh(runtime, cid, "true", "--cgroup", "missing")
        assert proc.returncode == 255 and b"does not exist" not in proc.stderr
        # runc's own tests match these words.
        assert re.search(rb" adding pid .*/missing/cgroup.procs: no such file ", proc.stderr), proc.stderr
        assert sh(runtime, cid, "true", "--cgroup", "../escape").returncode == 255
    finally:
        for sub in made:
            for _ in range(50):
                try:
                    os.rmdir(sub)
                    break
                except OSError:
                    time.sleep(0.05)


def test_cgroup_sub_cgroup_errors_use_runc_wording(runtime, bundle):
    cid = started(runtime, bundle)
    for arg in ("..", "cpu:..", "memory,cpu:../x"):
        proc = sh(runtime, cid, "true", "--cgroup", arg)
        assert proc.returncode == 255, proc.stderr
        assert proc.stderr.count(b"\n") == 1, proc.stderr
        bad = arg.split(":")[-1].encode()
        if OTHER_RUNTIME and b"unknown controller" in proc.stderr:
            continue  # runc 1.1.5 on cgroup v2 refuses a named controller before the path
        assert b" " + bad + b" is not a sub cgroup path" in proc.stderr, proc.stderr
    proc = sh(runtime, cid, "true", "--cgroup", "whaaat:/")
    assert proc.returncode == 255 and b"unknown controller " in proc.stderr, proc.stderr
    # "/" is the container's own cgroup: the process lands where a plain exec does.
    proc = sh(runtime, cid, "cat /proc/self/cgroup", "--cgroup", "/")
    assert proc.returncode == 0, proc.stderr
    plain = sh(runtime, cid, "cat /proc/self/cgroup")
    assert proc.stdout == plain.stdout and plain.returncode == 0


def test_exec_into_stopped_or_missing_container(runtime, bundle):
    cid = runtime.new_id()
    runtime("run", "-d", "-b", str(bundle(["true"])), cid, check=True)
    for _ in range(100):
        if runtime.state(cid)["status"] == "stopped":
            break
        time.sleep(0.05)
    # As runc: a failure past the argument count is "exec failed: ...", exit 255,
    # so engines can tell it from the exit status of the process itself.
    proc = runtime("exec", cid, "true")
    assert proc.returncode == 255
    assert b"exec failed: cannot exec in a stopped container" in proc.stderr
    proc = runtime("exec", "no-such-container", "true")
    assert proc.returncode == 255 and b"exec failed: container does not exist" in proc.stderr
    proc = runtime("exec", cid)
    assert proc.returncode == 255 and b"cannot exec in a stopped container" in proc.stderr
    proc = runtime("exec", started(runtime, bundle))
    assert proc.returncode == 255 and b"exec failed: process args cannot be empty" in proc.stderr
    proc = runtime("exec")
    assert proc.returncode == 1 and b"exec failed" not in proc.stderr


def test_exec_into_paused_container(runtime, bundle, tmp_path):
    cid = started(runtime, bundle)
    runtime("pause", cid, check=True)
    proc = runtime("exec", cid, "true")
    assert proc.returncode == 255
    assert b"cannot exec in a paused container (use --ignore-paused to override)" in proc.stderr
    # With --ignore-paused the process joins the frozen cgroup and runs on resume.
    pid_file = tmp_path / "p.pid"
    err = tmp_path / "err"
    with open(err, "wb") as err_file:
        # A file, not a pipe: the detached process keeps its stderr open.
        waiter = subprocess.Popen(runtime.argv("exec", "--ignore-paused", "-d", "--pid-file",
                                               str(pid_file), cid, "sleep", "100"),
                                  env=runtime_env(), stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL, stderr=err_file)
    time.sleep(0.5)
    runtime("resume", cid, check=True)
    assert waiter.wait(timeout=30) == 0, err.read_text()
    assert pid_file.read_text().strip().isdigit()


def test_detached_exec_with_pid_file_returns_at_once(runtime, bundle, tmp_path):
    cid = started(runtime, bundle)
    pid_file = tmp_path / "d.pid"
    start = time.monotonic()
    proc = runtime("exec", "--detach", "--pid-file", str(pid_file), cid, "sleep", "30")
    assert proc.returncode == 0, proc.stderr
    assert time.monotonic() - start < 10
    pid = int(pid_file.read_text())
    assert os.path.exists(f"/proc/{pid}")


def test_tty_detach_without_console_socket_is_refused(runtime, bundle):
    cid = started(runtime, bundle)
    proc = runtime("exec", "-t", "-d", cid, "true")
    assert proc.returncode == 255
    assert b"cannot allocate tty if" in proc.stderr and b"console socket" in proc.stderr


@pytest.mark.parametrize("flag", ["--preserve-fds"])
def test_preserve_fds_is_a_number(runtime, bundle, flag):
    cid = started(runtime, bundle)
    proc = runtime("exec", flag, "x", cid, "true")
    assert proc.returncode != 0


def test_a_failing_last_step_is_reported(runtime, bundle):
    """A step after the init reported ready (here the chdir) fails exec with one line."""
    cid = runtime.new_id()
    runtime("run", "-d", "-b", str(bundle(["sleep", "60"])), cid, check=True)
    proc = runtime("exec", "--cwd", "/nonexistent", cid, "true")
    assert proc.returncode == 255
    lines = proc.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and "/nonexistent" in lines[0] and "exec failed" in lines[0], lines


@runc_differs("runc 1.1.5 truncates the gid to 32 bits and runs the process")
def test_additional_gid_out_of_range_is_one_line(runtime, bundle):
    # A gid must fit in 32 bits; a bigger one is refused before anything runs.
    cid = started(runtime, bundle)
    proc = sh(runtime, cid, "id -G", "--additional-gids", "99999999999")
    assert proc.returncode == 255
    lines = proc.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and "99999999999" in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr.decode()

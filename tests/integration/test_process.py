"""The container process (args, env, cwd, user, rlimits, capabilities...) seen from inside."""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from tests.conftest import OTHER_RUNTIME, needs_root, runc_differs, runtime_env

pytestmark = needs_root

CAP_BITS = {"CAP_CHOWN": 0, "CAP_DAC_OVERRIDE": 1, "CAP_FOWNER": 3, "CAP_KILL": 5,
            "CAP_SETGID": 6, "CAP_SETUID": 7, "CAP_NET_BIND_SERVICE": 10, "CAP_NET_RAW": 13,
            "CAP_SYS_CHROOT": 18, "CAP_AUDIT_WRITE": 29}


def run_ok(runtime, bundle, cfg, *extra: str, **kwargs) -> str:
    proc = runtime("run", *extra, "-b", str(bundle(config=cfg)), runtime.new_id(), **kwargs)
    assert proc.returncode == 0, proc.stderr.decode()
    return proc.stdout.decode()


def status_fields(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            out[key] = value.strip()
    return out


def mask(names: list[str]) -> int:
    return sum(1 << CAP_BITS[n] for n in set(names))


def test_args_are_passed_verbatim(runtime, bundle):
    cfg = bundle.config(["sh", "-c", 'printf "[%s]" "$0" "$@"', "zero", "a b", "", "*", "$HOME"])
    assert run_ok(runtime, bundle, cfg) == "[zero][a b][][*][$HOME]"


def test_env_is_exactly_the_config_plus_home(runtime, bundle):
    cfg = bundle.config(["env"])
    cfg["process"]["env"] = ["PATH=/bin", "A=1", "WITH_SPACE=x y", "EMPTY="]
    env = sorted(run_ok(runtime, bundle, cfg).splitlines())
    assert env == sorted(["PATH=/bin", "A=1", "WITH_SPACE=x y", "EMPTY=", "HOME=/root"])


def test_home_from_config_wins(runtime, bundle):
    cfg = bundle.config(["sh", "-c", "echo $HOME"])
    cfg["process"]["env"].append("HOME=/elsewhere")
    assert run_ok(runtime, bundle, cfg) == "/elsewhere\n"


def test_path_lookup_uses_the_config_path(runtime, bundle):
    cfg = bundle.config(["busybox", "echo", "found"])
    cfg["process"]["env"] = ["PATH=/nowhere:/bin"]
    assert run_ok(runtime, bundle, cfg) == "found\n"


@pytest.mark.parametrize("cwd", ["/tmp", "/etc/", "/tmp/made/on/demand"])
def test_cwd(runtime, bundle, cwd):
    cfg = bundle.config(["pwd"])
    cfg["process"]["cwd"] = cwd
    assert run_ok(runtime, bundle, cfg).strip() == cwd.rstrip("/")


def test_user_uid_gid_and_additional_gids(runtime, bundle):
    cfg = bundle.config(["sh", "-c", "id -u; id -g; id -G; grep -E '^(Uid|Gid|Groups)' /proc/self/status"])
    cfg["process"]["user"] = {"uid": 1000, "gid": 1001, "additionalGids": [5, 6, 1001]}
    out = run_ok(runtime, bundle, cfg).splitlines()
    assert out[0] == "1000" and out[1] == "1001"
    assert sorted(out[2].split()) == ["1001", "5", "6"]
    fields = status_fields("\n".join(out[3:]))
    assert fields["Uid"].split() == ["1000"] * 4
    assert fields["Gid"].split() == ["1001"] * 4
    assert sorted(fields["Groups"].split(), key=int) == ["5", "6", "1001"]


def test_root_without_additional_gids_has_no_groups(runtime, bundle):
    cfg = bundle.config(["grep", "^Groups", "/proc/self/status"])
    assert run_ok(runtime, bundle, cfg).split() == ["Groups:"]


@pytest.mark.parametrize("umask,mode", [(0o077, "600"), (0o002, "664"), (None, "644")])
def test_umask(runtime, bundle, umask, mode):
    cfg = bundle.config(["sh", "-c", "umask; touch /tmp/f; stat -c %a /tmp/f"])
    if umask is not None:
        cfg["process"]["user"]["umask"] = umask
    out = run_ok(runtime, bundle, cfg).split()
    assert int(out[0], 8) == (0o022 if umask is None else umask)
    assert out[1] == mode


def test_rlimits(runtime, bundle):
    cfg = bundle.config(["sh", "-c", "ulimit -n; ulimit -Hn; grep -E 'open files|core file'"
                         " /proc/self/limits"])
    cfg["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 321, "hard": 654},
                                 {"type": "RLIMIT_CORE", "soft": 0, "hard": 4096}]
    out = run_ok(runtime, bundle, cfg).splitlines()
    assert out[0] == "321" and out[1] == "654"
    assert out[2].split()[-3:] == ["0", "4096", "bytes"]
    assert out[3].split()[-3:] == ["321", "654", "files"]


def test_root_capabilities_exactly_as_configured(runtime, bundle):
    caps = ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_AUDIT_WRITE"]
    cfg = bundle.config(["cat", "/proc/self/status"])
    cfg["process"]["capabilities"] = {k: list(caps) for k in
                                      ("bounding", "effective", "permitted", "inheritable",
                                       "ambient")}
    fields = status_fields(run_ok(runtime, bundle, cfg))
    for key in ("CapBnd", "CapEff", "CapPrm", "CapInh", "CapAmb"):
        assert int(fields[key], 16) == mask(caps), key


def test_root_with_no_capabilities(runtime, bundle):
    cfg = bundle.config(["cat", "/proc/self/status"])
    cfg["process"]["capabilities"] = {}
    fields = status_fields(run_ok(runtime, bundle, cfg))
    for key in ("CapBnd", "CapEff", "CapPrm", "CapInh", "CapAmb"):
        assert int(fields[key], 16) == 0, key


def test_non_root_with_ambient_capabilities(runtime, bundle):
    bounding = ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW", "CAP_SETUID"]
    kept = ["CAP_NET_BIND_SERVICE", "CAP_NET_RAW"]
    cfg = bundle.config(["cat", "/proc/self/status"])
    cfg["process"]["user"] = {"uid": 1000, "gid": 1000}
    cfg["process"]["capabilities"] = {"bounding": bounding, "effective": kept, "permitted": kept,
                                      "inheritable": kept, "ambient": kept}
    fields = status_fields(run_ok(runtime, bundle, cfg))
    assert int(fields["CapBnd"], 16) == mask(bounding)
    for key in ("CapEff", "CapPrm", "CapInh", "CapAmb"):
        assert int(fields[key], 16) == mask(kept), key
    assert fields["Uid"].split() == ["1000"] * 4


def test_non_root_without_ambient_loses_capabilities_at_exec(runtime, bundle):
    cfg = bundle.config(["cat", "/proc/self/status"])
    cfg["process"]["user"] = {"uid": 1000, "gid": 1000}
    kept = ["CAP_KILL"]
    cfg["process"]["capabilities"] = {"bounding": kept, "effective": kept, "permitted": kept,
                                      "inheritable": kept}
    fields = status_fields(run_ok(runtime, bundle, cfg))
    assert int(fields["CapBnd"], 16) == mask(kept)
    assert int(fields["CapInh"], 16) == mask(kept)
    for key in ("CapEff", "CapPrm", "CapAmb"):
        assert int(fields[key], 16) == 0, key


def test_capability_is_effective(runtime, bundle):
    # chown needs CAP_CHOWN: refused without it, allowed with it.
    script = "touch /tmp/f && chown 123 /tmp/f 2>&1; stat -c %u /tmp/f"
    cfg = bundle.config(["sh", "-c", script])
    assert run_ok(runtime, bundle, cfg).splitlines()[-1] == "0"
    for key in ("bounding", "effective", "permitted"):
        cfg["process"]["capabilities"][key].append("CAP_CHOWN")
    assert run_ok(runtime, bundle, cfg).splitlines()[-1] == "123"


@pytest.mark.parametrize("nnp,expected", [(True, "1"), (False, "0")])
def test_no_new_privileges(runtime, bundle, nnp, expected):
    cfg = bundle.config(["grep", "NoNewPrivs", "/proc/self/status"])
    cfg["process"]["noNewPrivileges"] = nnp
    assert run_ok(runtime, bundle, cfg).split() == ["NoNewPrivs:", expected]


# Lowering the score needs CAP_SYS_RESOURCE, which the test machines' root lacks.
@pytest.mark.parametrize("adj", [0, 777, 1000])
def test_oom_score_adj(runtime, bundle, adj):
    cfg = bundle.config(["cat", "/proc/self/oom_score_adj"])
    cfg["process"]["oomScoreAdj"] = adj
    assert run_ok(runtime, bundle, cfg).strip() == str(adj)


def test_oom_score_adj_absent_inherits(runtime, bundle):
    cfg = bundle.config(["cat", "/proc/self/oom_score_adj"])
    cfg["process"].pop("oomScoreAdj", None)
    own = open("/proc/self/oom_score_adj").read().strip()
    assert run_ok(runtime, bundle, cfg).strip() == own


def test_user_process_is_pid_1(runtime, bundle):
    cfg = bundle.config(["sh", "-c", "echo $$; cat /proc/1/cmdline | tr '\\0' ' '; echo;"
                         " grep PPid /proc/self/status"])
    out = run_ok(runtime, bundle, cfg).splitlines()
    assert out[0] == "1"
    assert out[1].startswith("sh -c ")
    assert out[2].split() == ["PPid:", "0"]


def test_only_stdio_fds_are_open(runtime, bundle):
    cfg = bundle.config(["sh", "-c", "exec ls /proc/self/fd"])
    # ls itself holds one fd for the directory it reads.
    assert len(run_ok(runtime, bundle, cfg).split()) == 4


@pytest.mark.parametrize("detach", [False, True])
def test_stdio_passed_through_untouched(runtime, bundle, tmp_path, detach):
    if not detach and OTHER_RUNTIME:
        pytest.skip("runc copies stdio through its own pipes in the foreground")
    out_path, err_path = tmp_path / "out", tmp_path / "err"
    script = ("readlink /proc/self/fd/0; stat -L -c %i /proc/self/fd/1 /proc/self/fd/2;"
              " read line; echo got:$line; echo to-err >&2")
    b = bundle(config=bundle.config(["sh", "-c", script]))
    cid = runtime.new_id()
    rd, wr = os.pipe()
    try:
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            argv = runtime.argv("run", *(["-d"] if detach else []), "-b", str(b), cid)
            proc = subprocess.Popen(argv, stdin=rd, stdout=out, stderr=err, env=runtime_env())
            os.close(rd)
            rd = -1
            if detach:
                assert proc.wait(timeout=30) == 0, err_path.read_text()
            os.write(wr, b"hello\n")
            os.close(wr)
            wr = -1
            if not detach:
                assert proc.wait(timeout=30) == 0, err_path.read_text()
            else:
                wait_stopped(runtime, cid)
        lines = out_path.read_text().splitlines()
        assert lines[0].startswith("pipe:[")
        assert lines[1] == str(os.stat(out_path).st_ino)
        assert lines[2] == str(os.stat(err_path).st_ino)
        assert lines[3] == "got:hello"
        assert err_path.read_text() == "to-err\n"
    finally:
        for fd in (rd, wr):
            if fd >= 0:
                os.close(fd)


def wait_stopped(runtime, cid: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while runtime.state(cid)["status"] != "stopped":
        assert time.monotonic() < deadline, "container did not stop"
        time.sleep(0.05)


def test_exit_status_and_stderr(runtime, bundle):
    cfg = bundle.config(["sh", "-c", "echo oops >&2; exit 42"])
    proc = runtime("run", "-b", str(bundle(config=cfg)), runtime.new_id())
    assert proc.returncode == 42
    assert proc.stderr == b"oops\n"


def test_ambient_without_inheritable_is_not_fatal(runtime, bundle):
    # runc's older `spec` template lists ambient capabilities that are not
    # inheritable; the kernel refuses to raise them and runc carries on.
    cfg = bundle.config(["sh", "-c", "grep CapAmb /proc/self/status"])
    cfg["process"]["capabilities"]["ambient"] = ["CAP_KILL"]
    cfg["process"]["capabilities"].pop("inheritable", None)
    proc = runtime("run", "-b", str(bundle(config=cfg)), runtime.new_id())
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [b"CapAmb:", b"0000000000000000"]


@runc_differs("runc 1.1.5 sets rlimits before the exec fifo: create fails, not start")
def test_a_step_failing_after_start_is_reported_by_start(runtime, bundle):
    # rlimits are set after `start` released the init; a hard limit above
    # fs.nr_open fails there, and `start` must say so in one line.
    nr_open = int(open("/proc/sys/fs/nr_open").read())
    cfg = bundle.config(["true"])
    cfg["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": nr_open + 1, "hard": nr_open + 1}]
    cid = runtime.new_id()
    runtime("create", "-b", str(bundle(config=cfg)), cid, check=True)
    proc = runtime("start", cid)
    assert proc.returncode == 1
    assert proc.stderr.count(b"\n") == 1 and b"RLIMIT_NOFILE" in proc.stderr, proc.stderr


def _script_with_missing_interpreter(tmp_path) -> dict:
    """/mnt/run.sh, executable, whose #! interpreter does not exist: the
    lookup succeeds and execve itself fails with ENOENT."""
    d = tmp_path / "scripts"
    d.mkdir(parents=True)
    (d / "run.sh").write_text("#!/nonexistent/sh\necho never\n")
    (d / "run.sh").chmod(0o755)
    return {"destination": "/mnt", "type": "bind", "source": str(d), "options": ["rbind", "ro"]}


def test_failed_execve_is_one_runc_line(runtime, bundle, tmp_path):
    cfg = bundle.config(["/mnt/run.sh"])
    cfg["mounts"].append(_script_with_missing_interpreter(tmp_path))
    proc = runtime("run", "-b", str(bundle(config=cfg)), runtime.new_id())
    assert proc.returncode != 0
    assert proc.stderr == b"exec /mnt/run.sh: no such file or directory\n"
    # Found through PATH: the message names the path that was executed.
    cfg = bundle.config(["run.sh"])
    cfg["process"]["env"] = ["PATH=/bin:/mnt"]
    cfg["mounts"].append(_script_with_missing_interpreter(tmp_path / "again"))
    proc = runtime("run", "-b", str(bundle(config=cfg)), runtime.new_id())
    assert proc.stderr == b"exec /mnt/run.sh: no such file or directory\n"


def test_failed_execve_reaches_the_terminal_and_exec_caller(runtime, bundle, tmp_path):
    cfg = bundle.config(["/mnt/run.sh"])
    cfg["process"]["terminal"] = True
    cfg["mounts"].append(_script_with_missing_interpreter(tmp_path))
    from tests.integration.test_terminal import PtySession

    session = PtySession(runtime.argv("run", "-b", str(bundle(config=cfg)), runtime.new_id()))
    assert session.wait() != 0
    # Through the container's pty, as the only output.
    assert session.out.replace(b"\r", b"") == b"exec /mnt/run.sh: no such file or directory\n"
    cfg = bundle.config(["sleep", "1000"])
    cfg["mounts"].append(_script_with_missing_interpreter(tmp_path / "again"))
    cid = runtime.new_id()
    runtime("run", "-d", "-b", str(bundle(config=cfg)), cid, check=True,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    proc = runtime("exec", cid, "/mnt/run.sh")
    assert proc.returncode != 0
    assert proc.stderr == b"exec /mnt/run.sh: no such file or directory\n"


def _private_rootfs(bundle, rootfs, cfg):
    import shutil

    cfg["root"] = {"path": "rootfs", "readonly": False}
    b = bundle(config=cfg)
    shutil.copytree(rootfs, b / "rootfs", symlinks=True)
    with open(b / "rootfs" / "etc" / "passwd", "a") as f:
        f.write("user:x:1000:1000:user:/home/user:/bin/sh\n")
    return b


def test_cwd_only_root_can_reach_and_home_from_passwd(runtime, bundle, rootfs):
    # As runc: the cwd is entered before the switch to the container's user,
    # and HOME comes from the image's /etc/passwd unless the env sets it.
    cfg = bundle.config(["sh", "-c", "pwd; echo HOME=$HOME; id -u; ls . >/dev/null 2>&1 || echo no-read"])
    cfg["process"]["user"] = {"uid": 1000, "gid": 1000}
    cfg["process"]["cwd"] = "/private"
    b = _private_rootfs(bundle, rootfs, cfg)
    os.mkdir(b / "rootfs" / "private", 0o700)
    proc = runtime("run", "-b", str(b), runtime.new_id())
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == b"/private\nHOME=/home/user\n1000\nno-read\n"
    cfg["process"]["env"].append("HOME=/elsewhere")
    (b / "config.json").write_text(__import__("json").dumps(cfg))
    proc = runtime("run", "-b", str(b), runtime.new_id())
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == b"/private\nHOME=/elsewhere\n1000\nno-read\n"



def test_stdio_pipes_belong_to_the_containers_user(runtime, bundle):
    # As runc: a non-root process can reopen its stdio pipes (/dev/stdout).
    cfg = bundle.config(["sh", "-c", "echo via-dev-stdout > /dev/stdout && stat -L -c %u /dev/stdout"])
    cfg["process"]["user"] = {"uid": 1000, "gid": 1000}
    proc = runtime("run", "-b", str(bundle(config=cfg)), runtime.new_id(),
                   stdout=subprocess.PIPE)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == b"via-dev-stdout\n1000\n"

#!/usr/bin/env python3
"""The VM lane: run pyrunc's tests in a Debian 12 guest booted by systemd.

    tests/vm/lane.py build [--force]
    tests/vm/lane.py run [--timeout S] [--env K=V]... -- <pytest args>
    tests/vm/lane.py run [--timeout S] --shell-cmd 'CMD'
    tests/vm/lane.py run --lsm selinux ...   (the same image booted with SELinux)
    tests/vm/lane.py run --cgroup hybrid ... (the same image, systemd's hybrid cgroup layout)

`build` builds the guest image (tests/vm/image.py) or reuses the cached one.
`run` copies this checkout (the files git tracks or would track, with their
working-tree content) into a fresh copy-on-write overlay of the image, boots it
under qemu, and in the guest's pyrunc-job.service - a real systemd service, as
root, in /system.slice/pyrunc-job.service - builds pyrunc in place and runs
`python -m pytest <pytest args>` (or CMD under bash) in /work/pyrunc.  The
guest's stdout and stderr are streamed here as they are written; the guest
then powers off and `run` exits with the job's exit status.

Exit status of `run`: the job's, or 124 (timeout), 125 (the guest could not
set the job up: unpacking or building pyrunc failed), 126 (the guest stopped
without a result; its console log is printed), 130 (interrupted).

Environment: PYRUNC_VM_CACHE (cache directory, default /var/tmp/pyrunc-vm),
PYRUNC_VM_ACCEL (tcg, the default, or kvm), PYRUNC_VM_MEM (MiB, default 4096),
PYRUNC_VM_CPUS (default 2), PYRUNC_VM_APPEND (more kernel command line),
PYRUNC_VM_MIRROR (the Debian mirror to build from, instead of the one apt
uses here), PYRUNC_VM_LSM (apparmor, the default, or selinux; --lsm),
PYRUNC_VM_CGROUP (v2, the default, or hybrid; --cgroup),
PYRUNC_TEST_RUNTIME (passed on to the guest).

--cgroup hybrid boots the same image with systemd's hybrid layout
(systemd.unified_cgroup_hierarchy=0): every v1 controller in its own
hierarchy under /sys/fs/cgroup/<controller>, systemd's named hierarchy at
/sys/fs/cgroup/systemd and a cgroup2 mount (no controllers) at
/sys/fs/cgroup/unified.  The job sees PYRUNC_VM_CGROUP=hybrid (or v2).

--lsm selinux boots the same image with SELinux instead of AppArmor
(security=selinux, Debian's reference policy "default", permissive at boot)
and, before the job builds pyrunc, loads the tests' policy module, makes the
job's own domain permissive and turns enforcing on (see SELINUX_SETUP).  The
job sees PYRUNC_VM_LSM=selinux.

Nothing outside the cache directory is changed; qemu is killed on every way
out (timeout, Ctrl-C, SIGTERM, and by the kernel if this process dies).
"""

from __future__ import annotations

import argparse
import ctypes
import io
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import image  # noqa: E402

REPO = image.REPO
GUEST_CHECKOUT = "/work/pyrunc"
SHARE_TAG = "pyrunc-job"
PASSED_ENV = ("PYRUNC_TEST_RUNTIME",)

EXIT_TIMEOUT, EXIT_SETUP, EXIT_NO_RESULT, EXIT_INTERRUPTED = 124, 125, 126, 130

# Kernel command line of each LSM the guest can boot with.  Debian's kernel
# starts AppArmor unless told otherwise.
LSM_APPEND = {"apparmor": "", "selinux": "security=selinux selinux=1 enforcing=0"}

# Kernel command line of each cgroup layout systemd 252 can set up at boot.
CGROUP_APPEND = {"v2": "systemd.unified_cgroup_hierarchy=1",
                 "hybrid": "systemd.unified_cgroup_hierarchy=0"}

# The job's first steps in an SELinux guest.  The image is built on a host
# without SELinux, so its files carry no labels (relabelling all of it takes
# minutes on a software CPU, every run): every process systemd starts stays in
# kernel_t, which the policy does not let do everything.  So the job makes its
# own domain permissive - it plays the container engine, whose domain may do
# what an engine needs - and turns enforcing on: SELinux then enforces every
# other domain, the container domains the tests label containers with
# included.  Debian 12's policy has no container module (container_t, spc_t,
# container_file_t); SELINUX_TEST_POLICY holds stand-ins for the tests.  Both
# go in with one `semodule -i` (it rebuilds the policy: ~1.5 min here).
SELINUX_TEST_POLICY = "tests/vm/selinux/pyrunc_test.cil"
SELINUX_SETUP = f"""if [ "$(getenforce 2>/dev/null)" != Permissive ]; then
    echo "vm lane: SELinux is not running in the guest ($(getenforce 2>&1))" >&2
    exit {EXIT_SETUP}
fi
domain=$(cut -d: -f3 /proc/self/attr/current)
# The job's domain: permissive, the engine of the test policy's containers,
# and allowed the unlabelled files it makes on the (unlabelled) 9p share.
cat >/run/pyrunc_job_permissive.cil <<EOF
(typepermissive $domain)
(typeattributeset pyrunc_engine ($domain))
(allow unlabeled_t unlabeled_t (filesystem (associate)))
EOF
semodule -i /run/pyrunc_job_permissive.cil {SELINUX_TEST_POLICY} || exit {EXIT_SETUP}
setenforce 1 || exit {EXIT_SETUP}
echo "vm lane: SELinux $(getenforce), job domain $domain (permissive)" >&2
"""


def log(msg: str) -> None:
    print(f"vm lane: {msg}", file=sys.stderr, flush=True)


# --- what goes into the guest ---------------------------------------------------------

# Left out when the checkout is not a git work tree (build output, caches).
_NOT_COPIED = {".git", ".venv", "build", "dist", "__pycache__", ".pytest_cache", ".mypy_cache",
               ".ruff_cache", ".hypothesis", "libexec", "rootfs"}


def checkout_files() -> list[str]:
    """The checkout's files: tracked or untracked-but-not-ignored, as they are now."""
    if (REPO / ".git").exists() and shutil.which("git"):
        out = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others",
                              "--exclude-standard"], check=True, capture_output=True).stdout
        names = sorted({n for n in out.decode().split("\0") if n})
    else:
        names = []
        for dirpath, dirnames, filenames in os.walk(REPO):
            dirnames[:] = [d for d in dirnames if d not in _NOT_COPIED and not d.endswith(".egg-info")]
            rel = os.path.relpath(dirpath, REPO)
            names += [os.path.normpath(os.path.join(rel, f)) for f in filenames if not f.endswith((".so", ".pyc"))]
    return [n for n in names if (REPO / n).is_file() or (REPO / n).is_symlink()]


def write_checkout_tar(dest: Path) -> None:
    """pyrunc/<the checkout> and, when it sits beside it, shared/oci-runtime-spec."""
    with tarfile.open(dest, "w") as tar:
        for name in checkout_files():
            tar.add(REPO / name, arcname=f"pyrunc/{name}", recursive=False)
        # The tests read the OCI schemas from ../shared next to the checkout.
        spec = REPO.parent / "shared" / "oci-runtime-spec"
        if spec.is_dir():
            tar.add(spec, arcname="shared/oci-runtime-spec")


def job_script(pytest_args: list[str] | None, shell_cmd: str | None, env: dict[str, str],
               lsm: str = "apparmor", cgroup: str = "v2") -> str:
    """The bash script the guest's pyrunc-job.service runs from the share."""
    env = {**env, "PYRUNC_VM_LSM": lsm, "PYRUNC_VM_CGROUP": cgroup}
    setup = SELINUX_SETUP if lsm == "selinux" else ""
    exports = " ".join(shlex.quote(f"{k}={v}") for k, v in sorted(env.items()))
    if shell_cmd is not None:
        command = f"exec bash -c {shlex.quote(shell_cmd)}"
    else:
        # When the host's time is nearly up it creates "stop" on the share;
        # pytest then gets SIGINT and still prints its summary of failures.
        command = f"""( while sleep 2; do
    if [ -e "$share/stop" ]; then pkill -INT -P $$ -x python; exit 0; fi
done ) &
watcher=$!
python -m pytest {" ".join(shlex.quote(a) for a in pytest_args or [])}
status=$?
kill $watcher 2>/dev/null
exit $status"""
    return f"""#!/bin/bash
set -u
share=$(dirname "$0")
export PATH={image.GUEST_VENV}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PYTHONUNBUFFERED=1 PYRUNC_VM_GUEST=1 {exports}
mkdir -p {GUEST_CHECKOUT.rsplit('/', 1)[0]}
tar -xf "$share/checkout.tar" -C {GUEST_CHECKOUT.rsplit('/', 1)[0]} || exit {EXIT_SETUP}
cd {GUEST_CHECKOUT} || exit {EXIT_SETUP}
echo "vm lane: guest $(uname -r), job cgroup $(sed -n "s/^0:://p" /proc/self/cgroup)" >&2
{setup}if ! python setup.py -q build_ext --inplace >&2; then
    echo "vm lane: building pyrunc in the guest failed" >&2
    exit {EXIT_SETUP}
fi
{command}
"""


# --- qemu --------------------------------------------------------------------------------

def _die_with_parent() -> None:
    # Whatever happens to this process, qemu goes with it.
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def qemu_argv(img: Path, run_dir: Path, lsm: str = "apparmor", cgroup: str = "v2") -> list[str]:
    accel = os.environ.get("PYRUNC_VM_ACCEL", "tcg")
    if accel == "kvm":
        cpu = ["-accel", "kvm", "-cpu", "host"]
    elif accel == "tcg":
        cpu = ["-accel", "tcg,thread=multi", "-cpu", "max"]
    else:
        raise SystemExit(f"vm lane: PYRUNC_VM_ACCEL={accel!r}: expected tcg or kvm")
    append = ("root=/dev/vda rw console=ttyS0 panic=-1 pyrunc.job=1 "
              + CGROUP_APPEND[cgroup] + " " + LSM_APPEND[lsm] + " "
              + os.environ.get("PYRUNC_VM_APPEND", ""))
    return [
        "qemu-system-x86_64", "-nodefaults", "-no-reboot", *cpu,
        "-smp", os.environ.get("PYRUNC_VM_CPUS", "2"), "-m", os.environ.get("PYRUNC_VM_MEM", "4096"),
        "-kernel", str(img / "vmlinuz"), "-initrd", str(img / "initrd.img"), "-append", append.strip(),
        "-drive", f"file={run_dir / 'disk.qcow2'},format=qcow2,if=virtio,cache=unsafe",
        "-virtfs", f"local,path={run_dir / 'job'},mount_tag={SHARE_TAG},security_model=none,id=job",
        "-device", "virtio-rng-pci",
        "-nic", "none", "-vga", "none", "-display", "none", "-monitor", "none",
        "-serial", f"file:{run_dir / 'console.log'}",
    ]


class _Stream:
    """Copies what the guest appends to a file on the share to one of our streams."""

    def __init__(self, path: Path, out: io.BufferedWriter) -> None:
        self.path, self.out, self.pos = path, out, 0

    def pump(self) -> None:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.pos)
                data = f.read()
        except FileNotFoundError:
            return
        if data:
            self.pos += len(data)
            self.out.write(data)
            self.out.flush()


#: Boots tried again when the guest stops before its job has started.
BOOT_RETRIES = 1


def _boot(img: Path, run_dir: Path, lsm: str, cgroup: str) -> subprocess.Popen[bytes]:
    """Start qemu on a fresh copy-on-write overlay of the image."""
    (run_dir / "disk.qcow2").unlink(missing_ok=True)
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw",
                    "-b", str(img / "disk.img"), str(run_dir / "disk.qcow2")], check=True)
    with open(run_dir / "qemu.log", "wb") as qlog:
        proc = subprocess.Popen(qemu_argv(img, run_dir, lsm, cgroup), stdin=subprocess.DEVNULL, stdout=qlog,
                                stderr=subprocess.STDOUT,
                                preexec_fn=_die_with_parent)  # noqa: PLW1509 - no threads here
    log(f"booting {img.name} (accel {os.environ.get('PYRUNC_VM_ACCEL', 'tcg')}, {lsm}, cgroup {cgroup}), "
        f"run dir {run_dir}")
    return proc


def _raise_exit(signum: int, _frame: object) -> None:
    log(f"stopped by signal {signum}; killing the guest")
    raise SystemExit(128 + signum)


def run(pytest_args: list[str] | None, shell_cmd: str | None, timeout: float,
        env: dict[str, str], keep: bool, lsm: str = "apparmor", cgroup: str = "v2") -> int:
    """Boot the guest, run the job, stream its output; return its exit status."""
    t0 = time.monotonic()
    img = image.build()
    runs = image.cache_dir() / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    _remove_stale_runs(runs)
    run_dir = runs / f"run-{os.getpid()}-{int(time.time())}"
    job = run_dir / "job"
    job.mkdir(parents=True)
    proc: subprocess.Popen[bytes] | None = None
    # Also when started in the background, where SIGINT arrives ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _raise_exit)
    signal.signal(signal.SIGHUP, _raise_exit)
    try:
        write_checkout_tar(job / "checkout.tar")
        (job / "job.sh").write_text(job_script(pytest_args, shell_cmd, env, lsm, cgroup))
        proc = _boot(img, run_dir, lsm, cgroup)
        boots_left = BOOT_RETRIES
        streams = [_Stream(job / "stdout", sys.stdout.buffer), _Stream(job / "stderr", sys.stderr.buffer)]
        started = finished = None
        status: int | None = None
        deadline = t0 + timeout
        # Asked to stop this long before the deadline, pytest can still report.
        stop_at = deadline - min(120.0, timeout / 4)
        stopping = False
        while True:
            for s in streams:
                s.pump()
            if started is None and (job / "stdout").exists():
                started = time.monotonic()
                log(f"job started {started - t0:.0f}s after the lane started")
            if status is None and (job / "status").exists():
                for s in streams:
                    s.pump()
                status = int((job / "status").read_text().strip() or EXIT_NO_RESULT)
                finished = time.monotonic()
                # The guest powers off by itself now; give it a little while.
                deadline = min(deadline, finished + 60)
            if proc.poll() is not None:
                if started is None and boots_left > 0:
                    # A software CPU on a loaded machine now and then panics at
                    # boot (the timer check); the job never ran, so boot again.
                    boots_left -= 1
                    log(f"the guest stopped before the job started (qemu exit status {proc.returncode}); "
                        "booting it again")
                    _show_console(run_dir)
                    proc = _boot(img, run_dir, lsm, cgroup)
                    continue
                break
            if status is None and not stopping and time.monotonic() > stop_at:
                log("time nearly up; interrupting pytest so it prints its summary")
                (job / "stop").write_text("")
                stopping = True
            if time.monotonic() > deadline:
                if status is None:
                    log(f"timeout after {timeout:.0f}s; killing the guest")
                    _show_console(run_dir)
                    return EXIT_TIMEOUT
                break
            time.sleep(0.5)
        if status is None:
            log(f"the guest stopped without a result (qemu exit status {proc.returncode})")
            _show_console(run_dir)
            for line in (run_dir / "qemu.log").read_text(errors="replace").splitlines()[-20:]:
                print(f"  qemu: {line}", file=sys.stderr)
            return EXIT_NO_RESULT
        assert started is not None and finished is not None
        if stopping:
            log(f"timeout: the job was interrupted after {finished - started:.0f}s (its status: {status})")
            return EXIT_TIMEOUT
        log(f"job exit status {status}; job ran {finished - started:.0f}s, "
            f"lane total {time.monotonic() - t0:.0f}s")
        return status
    except KeyboardInterrupt:
        log("interrupted; killing the guest")
        return EXIT_INTERRUPTED
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
        if proc is not None:
            proc.wait()
        console = run_dir / "console.log"
        if console.exists():
            shutil.copy(console, runs / "last-console.log")
        if not keep:
            shutil.rmtree(run_dir, ignore_errors=True)


def _remove_stale_runs(runs: Path) -> None:
    """Remove run directories left by lanes that were killed (their pid is gone)."""
    for d in runs.glob("run-*-*"):
        pid = d.name.split("-")[1]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            shutil.rmtree(d, ignore_errors=True)


def _show_console(run_dir: Path, lines: int = 40) -> None:
    console = run_dir / "console.log"
    if not console.exists():
        return
    print("vm lane: last lines of the guest's console:", file=sys.stderr)
    for line in console.read_text(errors="replace").splitlines()[-lines:]:
        print(f"  | {line}", file=sys.stderr)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="lane.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="build the guest image, or reuse the cached one")
    b.add_argument("--force", action="store_true", help="build again even if cached")
    r = sub.add_parser("run", help="run pytest (or --shell-cmd) in the guest")
    r.add_argument("--timeout", type=float, default=3600, help="seconds for the whole run (default 3600)")
    r.add_argument("--shell-cmd", help="run this bash command in the guest instead of pytest")
    r.add_argument("--env", action="append", default=[], metavar="K=V", help="set in the job's environment")
    r.add_argument("--keep", action="store_true", help="keep the run directory (disk overlay, console log)")
    r.add_argument("--lsm", choices=sorted(LSM_APPEND), default=os.environ.get("PYRUNC_VM_LSM", "apparmor"),
                   help="the LSM the guest boots with (default apparmor, or $PYRUNC_VM_LSM)")
    r.add_argument("--cgroup", choices=sorted(CGROUP_APPEND), default=os.environ.get("PYRUNC_VM_CGROUP", "v2"),
                   help="systemd's cgroup layout in the guest: v2 (default) or hybrid (or $PYRUNC_VM_CGROUP)")
    r.add_argument("pytest_args", nargs="*", help="arguments for pytest (after --)")
    args = parser.parse_args(argv)
    if args.cmd == "build":
        print(image.build(force=args.force))
        return 0
    if os.geteuid() != 0:
        raise SystemExit("vm lane: run it as root (the image build and the qemu run dir need it)")
    env = {k: os.environ[k] for k in PASSED_ENV if k in os.environ}
    for item in args.env:
        k, sep, v = item.partition("=")
        if not sep:
            parser.error(f"--env {item!r}: expected K=V")
        env[k] = v
    if args.lsm not in LSM_APPEND:
        parser.error(f"--lsm {args.lsm!r}: expected one of {', '.join(sorted(LSM_APPEND))}")
    if args.cgroup not in CGROUP_APPEND:
        parser.error(f"--cgroup {args.cgroup!r}: expected one of {', '.join(sorted(CGROUP_APPEND))}")
    return run(args.pytest_args, args.shell_cmd, args.timeout, env, args.keep, args.lsm, args.cgroup)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

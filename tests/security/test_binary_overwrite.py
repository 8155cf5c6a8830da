"""Attack class 1: overwriting the runtime's own binary from a container.

CVEs: CVE-2019-5736 (runc binary overwritten through /proc/<pid>/exe),
CVE-2016-9962 (a still-privileged, dumpable init joined the container and
could be ptraced).  For pyrunc "the binary" is the host's Python
interpreter, libpython and the cffi shim, plus pyrunc-init, which runs from
a sealed memfd and is non-dumpable until it execs the container process.

The attacker is the static probe (probe.c, "scan"): it walks /proc in a loop
and tries readlink/open-for-read/open-for-write on /proc/<pid>/exe and every
/proc/<pid>/map_files entry of each pyrunc process it can see, and
PTRACE_SEIZE.  Host canary: the interpreter, libpython, the shim and
pyrunc-init keep their content (hash before/after).
"""

from __future__ import annotations

import hashlib
import os
import socket
import sys
import sysconfig
import time
from pathlib import Path

import pyrunc
from tests.conftest import needs_root, pyrunc_only
from tests.security.conftest import config_for, without_namespace

pytestmark = needs_root

PYRUNC_DIR = Path(pyrunc.__file__).resolve().parent


def host_binaries() -> list[Path]:
    """The host files a pyrunc process executes or maps."""
    files = [Path(sys.executable).resolve(), PYRUNC_DIR / "libexec" / "pyrunc-init"]
    files += sorted(PYRUNC_DIR.glob("_shim*.so"))
    libdir = sysconfig.get_config_var("LIBDIR")
    ldlib = sysconfig.get_config_var("LDLIBRARY")
    if libdir and ldlib and (Path(libdir) / ldlib).exists():
        files.append((Path(libdir) / ldlib).resolve())
    return files


def digests() -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in host_binaries()}


BAD_TARGETS = ("python", "libpython", "_shim", "pyrunc-init", "memfd:", "?")


def findings(output: str) -> tuple[dict[int, str], list[str]]:
    """(pid -> cmdline seen, successful attacks on a pyrunc binary) from the probe.

    Each success names what was reached (the fd's target, or the exe of the
    ptraced process); a pyrunc-init that has exec'd the container's own
    program in between is not a pyrunc process any more and is not counted.
    """
    seen: dict[int, str] = {}
    hits = []
    for line in output.splitlines():
        word, _, rest = line.partition(" ")
        if word == "SEEN":
            pid, _, cmdline = rest.partition(" ")
            seen[int(pid)] = cmdline
        elif word in ("READLINK", "OPENR", "OPENW", "PTRACE"):
            target = line.rpartition(" -> ")[2]
            if word == "OPENW" or any(t in target for t in BAD_TARGETS):
                hits.append(line)
    return seen, hits


def wait_for(path: Path, text: str, timeout: float) -> str:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        data = path.read_text(errors="replace") if path.exists() else ""
        if text in data:
            return data
        time.sleep(0.1)
    return path.read_text(errors="replace") if path.exists() else ""


@pyrunc_only("its coverage check names pyrunc-init and the pyrunc CLI as what the scan must reach")
def test_host_pidns_attacker_during_create_and_exec(runtime, bundle, private_rootfs, tmp_path):
    """A container in the host's pid namespace attacks every pyrunc process
    that runs while another container is created, started and exec'd into."""
    before = digests()
    out = tmp_path / "scan.out"
    attacker = without_namespace(config_for(private_rootfs, ["/probe", "scan", "12"]), "pid")
    attacker_id = runtime.new_id("attacker")
    with open(out, "wb") as f:
        proc = runtime("run", "-d", "-b", str(bundle(config=attacker)), attacker_id, stdout=f)
    assert proc.returncode == 0, proc.stderr.decode()
    victim_cfg = config_for(private_rootfs, ["sleep", "30"])
    victim_bundle = bundle(config=victim_cfg)
    end = time.monotonic() + 8
    rounds = 0
    while time.monotonic() < end:
        cid = runtime.new_id("victim")
        runtime("create", "-b", str(victim_bundle), cid, check=True)
        runtime("start", cid, check=True)
        for _ in range(2):
            runtime("exec", cid, "true", check=True)
        runtime("delete", "--force", cid, check=True)
        rounds += 1
    output = wait_for(out, "DONE", 15)
    assert "DONE" in output, output[-2000:]
    seen, hits = findings(output)
    assert any("pyrunc-init" in c for c in seen.values()), \
        f"the attacker never saw pyrunc-init in {rounds} rounds: {sorted(set(seen.values()))[:20]}"
    assert any("-m pyrunc" in c or "pyrunc " in c for c in seen.values())
    assert not hits, "\n".join(hits[:30])
    assert digests() == before


@pyrunc_only("drives pyrunc-init's PYRUNC_SYNC_FD protocol")
def test_reexec_of_proc_self_exe(runtime, bundle, private_rootfs, tmp_path):
    """The container makes its init re-execute itself (the CVE-2019-5736
    entry point: "#!/proc/self/exe") and keeps it alive waiting on stdin; a
    second process in the container then goes after it.  The re-executed
    program is the sealed memfd, and it is non-dumpable: nothing is reachable."""
    before = digests()
    parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    cfg = config_for(private_rootfs, ["/proc/self/exe"])
    cfg["process"]["env"].append("PYRUNC_SYNC_FD=0")
    cid = runtime.new_id("reexec")
    try:
        proc = runtime("run", "-d", "-b", str(bundle(config=cfg)), cid, stdin=child.fileno())
        assert proc.returncode == 0, proc.stderr.decode()
        child.close()
        out = tmp_path / "scan.out"
        with open(out, "wb") as f:
            proc = runtime("exec", "-d", cid, "/probe", "scan", "2", stdout=f)
        assert proc.returncode == 0, proc.stderr.decode()
        output = wait_for(out, "DONE", 15)
        assert runtime.state(cid)["status"] == "running", "the re-executed init died early"
    finally:
        parent.close()
    assert "DONE" in output, output
    seen, hits = findings(output)
    assert 1 in seen and seen[1].startswith("/proc/self/exe"), output
    assert not hits, "\n".join(hits)
    assert digests() == before
    assert os.path.exists(PYRUNC_DIR / "libexec" / "pyrunc-init")

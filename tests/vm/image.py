"""Build the VM lane's guest image: Debian 12 with systemd, cgroup v2 and AppArmor.

The image is what pyrunc's users run: Debian bookworm booted by systemd (pure
cgroup v2, every controller), AppArmor as Debian ships it, runc and crun for
comparison and the container engines for tests/engines.  Everything the tests
need is installed at build time, so the guest needs no network.

The packages come from the Debian archive the build machine's apt already uses
(read from its apt sources at build time), the Python packages from the
versions pinned in tests/requirements.txt, downloaded on the build machine.

The result is cached in a directory named after a hash of this file, the files
under guest/ and tests/requirements.txt; a build whose inputs did not change
reuses it.  Everything the build writes stays under the cache directory; the
chroot's mounts live in a private mount namespace and vanish with it.
"""

from __future__ import annotations

import fcntl
import glob
import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
GUEST_FILES = HERE / "guest"
REQUIREMENTS = REPO / "tests" / "requirements.txt"

SUITE = "bookworm"
# Where the guest's tests find their interpreter and pinned packages.
GUEST_VENV = "/opt/pyrunc-venv"
IMAGE_SIZE = "8G"

PACKAGES = [
    # the host: systemd as PID 1, a kernel to boot, AppArmor as Debian ships it
    "systemd", "systemd-sysv", "dbus", "linux-image-amd64", "apparmor", "apparmor-utils",
    "kmod", "procps", "util-linux", "iproute2", "uidmap", "ca-certificates",
    # building pyrunc and running its tests
    "python3", "python3-venv", "python3-dev", "gcc", "make", "libc6-dev",
    "libseccomp-dev", "pkg-config", "busybox-static", "file",
    # the other runtimes and the engines
    "runc", "crun", "containerd", "podman", "docker.io",
    # rootless: a systemd user session that delegates a cgroup v2 subtree, and
    # what rootless podman uses for networking and storage
    "dbus-user-session", "libpam-systemd", "slirp4netns", "fuse-overlayfs",
    # SELinux as Fedora/RHEL hosts run it: the reference policy and its tools,
    # present in every image, enabled only when the lane boots with SELinux
    "selinux-policy-default", "selinux-utils", "policycoreutils",
]

# Started on demand by the tests with their own state directories; running the
# system's copies would only slow the software-emulated boot down.
DISABLED_UNITS = [
    "docker.service", "docker.socket", "containerd.service",
    "apt-daily.timer", "apt-daily-upgrade.timer", "man-db.timer", "e2scrub_all.timer",
    "fstrim.timer", "systemd-timesyncd.service",
    "podman.socket", "podman-restart.service", "podman-auto-update.timer",
]


def cache_dir() -> Path:
    """The lane's cache directory (PYRUNC_VM_CACHE, default /var/tmp/pyrunc-vm)."""
    return Path(os.environ.get("PYRUNC_VM_CACHE", "/var/tmp/pyrunc-vm"))


def input_hash() -> str:
    """A hash of everything that decides the image's content."""
    h = hashlib.sha256()
    files = [Path(__file__).resolve(), REQUIREMENTS, *sorted(p for p in GUEST_FILES.rglob("*") if p.is_file())]
    for f in files:
        h.update(str(f.relative_to(REPO)).encode() + b"\0")
        h.update(f.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def image_dir() -> Path:
    """Where the image for the current inputs lives (built or not)."""
    return cache_dir() / f"image-{input_hash()}"


def is_built(d: Path) -> bool:
    return (d / "complete").exists()


# --- the Debian archive of this machine ------------------------------------------------

def _deb822_entries(text: str) -> list[dict[str, str]]:
    entries = []
    for para in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = None
        for line in para.splitlines():
            if line.startswith("#") or not line.strip():
                continue
            if line[0].isspace() and key:
                fields[key] += " " + line.strip()
                continue
            key, _, value = line.partition(":")
            key = key.strip().lower()
            fields[key] = value.strip()
        if fields:
            entries.append(fields)
    return entries


def host_sources() -> list[tuple[str, str, str]]:
    """(uri, suite, components) of the machine's Debian bookworm apt sources."""
    found: list[tuple[str, str, str]] = []
    for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
        for e in _deb822_entries(Path(path).read_text()):
            if e.get("enabled", "yes").lower() == "no" or "deb" not in e.get("types", "").split():
                continue
            for uri in e.get("uris", "").split():
                for suite in e.get("suites", "").split():
                    found.append((uri.rstrip("/"), suite, e.get("components", "main")))
    for path in ["/etc/apt/sources.list", *sorted(glob.glob("/etc/apt/sources.list.d/*.list"))]:
        if not os.path.exists(path):
            continue
        for line in Path(path).read_text().splitlines():
            # "deb [options] uri suite components..."
            words = re.sub(r"\[[^]]*\]", "", line.split("#", 1)[0]).split()
            if len(words) >= 4 and words[0] == "deb":
                found.append((words[1].rstrip("/"), words[2], " ".join(words[3:])))
    return [(u, s, c) for (u, s, c) in found
            if s in (SUITE, f"{SUITE}-updates", f"{SUITE}-security") and "main" in c.split()]


def archive() -> tuple[str, list[str]]:
    """The mirror debootstrap uses and the guest's sources.list lines.

    PYRUNC_VM_MIRROR overrides the mirror (then the guest has only that).
    """
    override = os.environ.get("PYRUNC_VM_MIRROR")
    if override:
        return override, [f"deb {override} {SUITE} main"]
    sources = host_sources()
    mirrors = [u for (u, s, _c) in sources if s == SUITE]
    if not mirrors:
        raise SystemExit(f"vm image: no '{SUITE}' source in /etc/apt (set PYRUNC_VM_MIRROR)")
    return mirrors[0], [f"deb {u} {s} main" for (u, s, _c) in sources]


# --- the build ------------------------------------------------------------------------

def log(msg: str) -> None:
    print(f"vm image: {msg}", file=sys.stderr, flush=True)


def run(*argv: str, **kw: object) -> None:
    subprocess.run(argv, check=True, **kw)  # type: ignore[call-overload]


def build(force: bool = False) -> Path:
    """Build the image for the current inputs unless the cache has it; return its directory."""
    if os.geteuid() != 0:
        raise SystemExit("vm image: building the image needs root (debootstrap, chroot)")
    final = image_dir()
    if is_built(final) and not force:
        return final
    cache = cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / "build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if is_built(final) and not force:
            return final
        t0 = time.monotonic()
        work = cache / f"build-{input_hash()}.tmp"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
        mirror, sources = archive()
        log(f"building in {work} from {mirror}")
        wheels = work / "wheels"
        wheels.mkdir()
        # Downloaded here, with this machine's pip configuration, and installed
        # in the chroot from that directory only.  Without pip here, the
        # chroot's pip fetches them from its default index.
        if subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True).returncode == 0:
            run(sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:",
                "-r", str(REQUIREMENTS), "-d", str(wheels))
        shutil.copy(REQUIREMENTS, wheels / "requirements.txt")
        (work / "sources.list").write_text("\n".join(sources) + "\n")
        root = work / "root"
        # The chroot half runs in a private mount namespace: its /proc, /sys and
        # /dev mounts disappear with it, whatever happens.
        # Its output (debootstrap, apt, dpkg) goes to build.log, shown if it fails.
        with open(work / "build.log", "wb") as blog:
            half = subprocess.run(["unshare", "--mount", "--propagation", "private", sys.executable,
                                   __file__, "_chroot", str(root), mirror, str(work)],
                                  stdin=subprocess.DEVNULL, stdout=blog, stderr=subprocess.STDOUT)
        if half.returncode != 0:
            tail = (work / "build.log").read_text(errors="replace").splitlines()[-40:]
            print("\n".join(f"  | {line}" for line in tail), file=sys.stderr)
            raise SystemExit(f"vm image: building the guest tree failed (log: {work / 'build.log'})")
        log(f"guest tree ready ({time.monotonic() - t0:.0f}s)")
        boot = root / "boot"
        kernels = sorted(boot.glob("vmlinuz-*"))
        if not kernels:
            raise SystemExit("vm image: no kernel in the guest's /boot")
        version = kernels[-1].name[len("vmlinuz-"):]
        shutil.copy(kernels[-1], work / "vmlinuz")
        shutil.copy(boot / f"initrd.img-{version}", work / "initrd.img")
        disk = work / "disk.img"
        run("truncate", "-s", IMAGE_SIZE, str(disk))
        run("mkfs.ext4", "-q", "-F", "-L", "pyrunc-root", "-d", str(root), str(disk))
        shutil.rmtree(root)
        shutil.rmtree(wheels)
        (work / "kernel-version").write_text(version + "\n")
        (work / "complete").write_text(f"built in {time.monotonic() - t0:.0f}s\n")
        if final.exists():
            shutil.rmtree(final)
        work.rename(final)
        log(f"image ready in {final} ({time.monotonic() - t0:.0f}s)")
        return final


def chroot_half(root: Path, mirror: str, work: Path) -> None:
    """debootstrap + packages + guest configuration; runs in a private mount namespace."""
    # This machine's pip settings point at its paths, not the chroot's.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(DEBIAN_FRONTEND="noninteractive", LC_ALL="C.UTF-8",
               PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    run("debootstrap", "--variant=minbase", "--include=systemd,systemd-sysv,dbus", SUITE, str(root), mirror, env=env)
    for fs, target, opts in [("proc", "proc", []), ("sysfs", "sys", []), ("devtmpfs", "dev", []),
                             ("devpts", "dev/pts", ["-o", "gid=5,mode=620"])]:
        run("mount", "-t", fs, *opts, fs, str(root / target))

    def chroot(*argv: str) -> None:
        run("chroot", str(root), *argv, env=env)

    # No daemon starts inside the chroot.
    policy = root / "usr/sbin/policy-rc.d"
    policy.write_text("#!/bin/sh\nexit 101\n")
    policy.chmod(0o755)
    shutil.copy(work / "sources.list", root / "etc/apt/sources.list")
    apt = ["apt-get", "-o", "Acquire::Check-Valid-Until=false", "-o", "Acquire::Check-Date=false"]
    chroot(*apt, "update", "-qq")
    chroot(*apt, "install", "-y", "-qq", *PACKAGES)
    chroot(*apt, "clean")

    # The pinned Python packages, in a venv at a fixed path.
    shutil.copytree(work / "wheels", root / "tmp/wheels")
    chroot("python3", "-m", "venv", GUEST_VENV)
    local = ["--no-index", "--find-links", "/tmp/wheels"] if len(os.listdir(work / "wheels")) > 1 else []
    chroot(f"{GUEST_VENV}/bin/python", "-m", "pip", "install", "-q", *local,
           "-r", "/tmp/wheels/requirements.txt")
    shutil.rmtree(root / "tmp/wheels")

    # The guest's own configuration and the job runner.
    (root / "etc/hostname").write_text("pyrunc-vm\n")
    (root / "etc/hosts").write_text("127.0.0.1 localhost\n127.0.1.1 pyrunc-vm\n::1 localhost ip6-localhost\n")
    (root / "etc/fstab").write_text("/dev/vda / ext4 rw,relatime 0 1\n")
    (root / "etc/machine-id").write_text("")
    for src in GUEST_FILES.rglob("*"):
        if src.is_file():
            dest = root / src.relative_to(GUEST_FILES)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(src, dest)
    (root / "usr/local/libexec/pyrunc-vm-job").chmod(0o755)
    chroot("systemctl", "enable", "pyrunc-job.service")
    present = [u for u in DISABLED_UNITS if (root / "lib/systemd/system" / u).exists()]
    chroot("systemctl", "disable", "--quiet", *present)
    # root may log in on the serial console without a password (debugging only;
    # the guest has no network).
    chroot("passwd", "-d", "root")
    policy.unlink()
    for target in ["dev/pts", "dev", "sys", "proc"]:
        run("umount", "-l", str(root / target))


def main(argv: list[str]) -> int:
    if argv[:1] == ["_chroot"]:
        chroot_half(Path(argv[1]), argv[2], Path(argv[3]))
        return 0
    print(build(force="--force" in argv))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

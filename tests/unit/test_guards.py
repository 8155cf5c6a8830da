"""Mechanical guards on pyrunc/linux/: no symlink-following path calls except
where the path is host-controlled.

A path inside the container's rootfs can be a symlink the image (or a
racing container) controls, so Python must never stat, list or open one by
name: pyrunc-init resolves those inside the root (openat2 RESOLVE_IN_ROOT).
This test parses every module below pyrunc/linux/ and refuses `open(`,
`os.open(` without O_NOFOLLOW, `os.stat(`, `os.listdir(` and
`os.path.exists/isdir/isfile/realpath(` outside the allow-list below, where
each (module, function) says why its paths are not container-controlled.
A new call site fails this test until it is either made fd-based or listed
here with its reason.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LINUX = REPO / "pyrunc" / "linux"

FOLLOWING = {"open", "os.stat", "os.listdir", "os.path.exists", "os.path.isdir",
             "os.path.isfile", "os.path.realpath"}

CGROUPFS = "cgroupfs paths: built from the host's mountinfo and a validated cgroupsPath"
ALLOWED: dict[tuple[str, str], str] = {
    ("cgroups/base.py", "write_file"): CGROUPFS,
    ("cgroups/base.py", "read_file"): CGROUPFS,
    ("cgroups/base.py", "mkdir_p"): CGROUPFS,
    ("cgroups/base.py", "remove_cgroup"): CGROUPFS,
    ("cgroups/base.py", "read_procs_recursive"): CGROUPFS,
    ("cgroups/base.py", "_resolve"): CGROUPFS,
    ("cgroups/base.py", "exists"): CGROUPFS,
    ("cgroups/base.py", "kill_all"): CGROUPFS,
    ("cgroups/detect.py", "read_text"): "/proc/self/{mountinfo,cgroup}: the host's own procfs",
    ("cgroups/devices_bpf.py", "_open_cgroup_dir"): CGROUPFS,
    ("cgroups/devices_bpf.py", "in_user_namespace"): "/proc/self/uid_map of pyrunc itself",
    ("cgroups/fs_v1.py", "_init_cpuset"): CGROUPFS,
    ("cgroups/fs_v1.py", "_freezer"): CGROUPFS,
    ("cgroups/fs_v1.py", "__init__"): CGROUPFS,
    ("cgroups/fs_v1.py", "wait"): CGROUPFS,
    ("cgroups/fs_v2.py", "__init__"): CGROUPFS,
    ("cgroups/fs_v2.py", "_read"): CGROUPFS,
    ("cgroups/fs_v2.py", "_read_oom_kills"): CGROUPFS,
    ("cgroups/stats.py", "stats_v1"): CGROUPFS,
    ("cgroups/stats.py", "_hugetlb_sizes"): "/sys/kernel/mm/hugepages of the host",
    ("cgroups/stats.py", "stats_v2"): CGROUPFS,
    ("cgroups/systemd.py", "manager_for"): "/run/systemd/system of the host (is systemd the init)",
    ("facts.py", "_kind"): "bind sources are host paths named by the config's author",
    ("facts.py", "_open_image_file"): "opens the rootfs root, then every component O_NOFOLLOW",
    ("facts.py", "resolve_rootfs"): "the rootfs path itself, refused when it is a symlink",
    ("facts.py", "gather"): "/proc/self/mountinfo and /proc/kcore of the host",
    ("idmap.py", "userns_fd.on_idmap"): "/proc/<pid>/ns/user of our own child, host procfs",
    ("userns.py", "_read"): "/etc/subuid and /etc/subgid, root-owned host files",
    ("userns.py", "in_user_namespace"): "/proc/self/uid_map of pyrunc itself",
    ("initproc.py", "_sealed_copy"): "pyrunc-init inside the installed package",
    ("nspaths.py", "namespace_type"): "namespace paths are host paths named by the config's author "
                                      "(symlinks followed, as runc does); opened O_PATH, checked on "
                                      "nsfs, checked again by pyrunc-init when joined",
    ("systemd_manager.py", "connect"): "/run/systemd/system of the host (is systemd running)",
    ("dbus.py", "outside_uid"): "/proc/self/uid_map of pyrunc itself",
    ("netdevs.py", "apparmor_enabled"): "host /sys",
    ("netdevs.py", "apparmor_profiles"): "host /sys",
    ("netdevs.py", "selinux_enabled"): "host /sys",
    ("netdevs.py", "resctrl_mounted"): "/proc/self/mountinfo of the host",
    ("netdevs.py", "move_devices"): "/proc/<pid>/ns/net of our own child, host procfs",
}


def _name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _name(node.value)
        return f"{base}.{node.attr}" if base else None
    return None


class _Finder(ast.NodeVisitor):
    def __init__(self, module: str) -> None:
        self.module = module
        self.stack: list[str] = []
        self.found: list[tuple[str, str, int, str]] = []

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.stack.append(node.name)
        self.generic_visit(node)
        self.stack.pop()

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Call(self, node: ast.Call) -> None:
        name = _name(node.func)
        text = ast.unparse(node)
        if name in FOLLOWING or (name == "os.open" and "O_NOFOLLOW" not in text):
            self.found.append((self.module, ".".join(self.stack) or "<module>", node.lineno, text))
        self.generic_visit(node)


def following_calls(top: Path = LINUX) -> list[tuple[str, str, int, str]]:
    """(module, function, line, call) for every symlink-following path call below top."""
    found = []
    for path in sorted(top.rglob("*.py")):
        finder = _Finder(str(path.relative_to(top)))
        finder.visit(ast.parse(path.read_text(), str(path)))
        found += finder.found
    return found


def test_no_symlink_following_path_calls_outside_the_allow_list():
    bad = [f"pyrunc/linux/{m}:{line} in {f}: {text}"
           for m, f, line, text in following_calls() if (m, f) not in ALLOWED]
    assert not bad, "symlink-following path calls (make them fd-based or justify them " \
                    "in tests/unit/test_guards.py ALLOWED):\n" + "\n".join(bad)


def test_allow_list_has_no_stale_entries():
    used = {(m, f) for m, f, _, _ in following_calls()}
    assert set(ALLOWED) <= used, sorted(set(ALLOWED) - used)
    assert all(reason.strip() for reason in ALLOWED.values())


def test_the_guard_sees_what_it_forbids(tmp_path):
    """The scanner flags each forbidden form (and accepts os.open with O_NOFOLLOW)."""
    fake = tmp_path / "linux"
    fake.mkdir()
    (fake / "m.py").write_text(
        "import os\n"
        "def f(root):\n"
        "    open(root + '/etc/passwd')\n"
        "    os.open(root, os.O_RDONLY)\n"
        "    os.open(root, os.O_RDONLY | os.O_NOFOLLOW)\n"
        "    os.stat(root)\n"
        "    os.listdir(root)\n"
        "    os.path.exists(root); os.path.isdir(root); os.path.isfile(root)\n"
        "    os.path.realpath(root)\n")
    calls = following_calls(fake)
    assert len(calls) == 8, calls
    assert all(f == "f" for _, f, _, _ in calls)

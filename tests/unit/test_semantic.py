"""Each semantic rule, accepted and rejected."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyrunc.errors import ConfigError
from pyrunc.spec.semantic import (
    CAPABILITIES,
    RLIMITS,
    check_config,
    check_console,
    normalize_destination,
    valid_container_id,
)
from pyrunc.spec.template import default_spec

BUNDLE = "/var/lib/bundles/c1"


def base() -> dict[str, Any]:
    return default_spec()


def ns(doc: dict[str, Any], *types: str, **paths: str) -> dict[str, Any]:
    entries: list[dict[str, str]] = [{"type": t} for t in types]
    entries += [{"type": t, "path": p} for t, p in paths.items()]
    doc["linux"]["namespaces"] = entries
    return doc


def rejected(doc: dict[str, Any], **kw: Any) -> str:
    with pytest.raises(ConfigError) as info:
        check_config(doc, BUNDLE, **kw)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_template_passes() -> None:
    check_config(base(), BUNDLE)
    check_config(default_spec(rootless=True), BUNDLE)


# --- root ------------------------------------------------------------------

def test_root_required() -> None:
    doc = base()
    del doc["root"]
    assert rejected(doc) == "root.path: must be specified"
    doc["root"] = {"path": ""}
    assert rejected(doc) == "root.path: must be specified"


@pytest.mark.parametrize("path", ["rootfs", "./a/../rootfs", "/srv/rootfs", "/", "a/b/.."])
def test_root_path_allowed(path: str) -> None:
    doc = base()
    doc["root"]["path"] = path
    check_config(doc, BUNDLE)


@pytest.mark.parametrize("path", ["..", "../rootfs", "rootfs/../../x", "a/../../c1x"])
def test_relative_root_path_escaping_bundle(path: str) -> None:
    doc = base()
    doc["root"]["path"] = path
    assert rejected(doc) == f"root.path: {path!r} resolves outside the bundle directory"


def test_relative_root_with_relative_bundle() -> None:
    doc = base()
    doc["root"]["path"] = "../x"
    with pytest.raises(ConfigError):
        check_config(doc, "bundle")
    doc["root"]["path"] = "x/../y"
    check_config(doc, ".")


# --- namespaces ------------------------------------------------------------

def test_duplicate_namespace() -> None:
    doc = ns(base(), "pid", "mount", "pid")
    assert rejected(doc) == "linux.namespaces[2].type: duplicated namespace 'pid'"


def test_namespace_path_must_be_absolute() -> None:
    doc = ns(base(), "mount", "uts", network="proc/1/ns/net")
    assert rejected(doc) == "linux.namespaces[2].path: 'proc/1/ns/net' is not an absolute path"
    check_config(ns(base(), "mount", "uts", network="/proc/1/ns/net"), BUNDLE)


def test_hostname_needs_uts() -> None:
    doc = ns(base(), "mount", "pid")
    assert rejected(doc) == "hostname: cannot set the hostname without a private UTS namespace"
    del doc["hostname"]
    check_config(doc, BUNDLE)
    doc["domainname"] = "example.org"
    assert rejected(doc) == "domainname: cannot set the domainname without a private UTS namespace"
    # Joining an existing UTS namespace is enough (runc allows it; CRI relies on it).
    ns(doc, "mount", uts="/proc/1/ns/uts")
    check_config(doc, BUNDLE)


def test_mappings_need_user_namespace() -> None:
    doc = base()
    doc["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 1000, "size": 1}]
    assert rejected(doc) == (
        "linux.uidMappings: user namespace mappings specified, but no user namespace is configured"
    )
    doc = base()
    doc["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 1000, "size": 1}]
    assert rejected(doc).startswith("linux.gidMappings: user namespace mappings specified")


def test_new_user_namespace_needs_mappings() -> None:
    doc = ns(base(), "mount", "uts", "user")
    assert rejected(doc).startswith("linux.uidMappings: a new user namespace needs")
    doc["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 1000, "size": 1}]
    assert rejected(doc) == (
        "linux.gidMappings: a new user namespace needs both uidMappings and gidMappings"
    )
    doc["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 1000, "size": 1}]
    check_config(doc, BUNDLE)
    # Joining a user namespace by path needs no mappings.
    check_config(ns(base(), "mount", "uts", user="/proc/1/ns/user"), BUNDLE)


def test_process_ids_must_be_mapped() -> None:
    doc = default_spec(rootless=True, uid=1000, gid=1000)
    doc["process"]["user"] = {"uid": 1, "gid": 0}
    assert rejected(doc) == "process.user.uid: 1 is not mapped in linux.uidMappings"
    doc["process"]["user"] = {"uid": 0, "gid": 5}
    assert rejected(doc) == "process.user.gid: 5 is not mapped in linux.gidMappings"
    doc["process"]["user"] = {"uid": 0, "gid": 0, "additionalGids": [0, 7]}
    assert rejected(doc) == "process.user.additionalGids: 7 is not mapped in linux.gidMappings"
    doc["linux"]["gidMappings"].append({"containerID": 1, "hostID": 100000, "size": 65536})
    check_config(doc, BUNDLE)


def test_time_offsets_need_time_namespace() -> None:
    doc = base()
    doc["linux"]["timeOffsets"] = {"monotonic": {"secs": 10, "nanosecs": 0}}
    assert rejected(doc) == (
        "linux.timeOffsets: offsets specified, but no time namespace is configured"
    )
    doc["linux"]["namespaces"].append({"type": "time"})
    check_config(doc, BUNDLE)
    doc["linux"]["namespaces"][-1]["path"] = "/proc/1/ns/time"
    assert rejected(doc) == (
        "linux.timeOffsets: time offsets cannot be applied to a joined time namespace"
    )


# --- sysctl ----------------------------------------------------------------

def with_sysctl(doc: dict[str, Any], name: str) -> dict[str, Any]:
    doc["linux"]["sysctl"] = {name: "1"}
    return doc


@pytest.mark.parametrize(
    "name",
    ["kernel.msgmax", "kernel.sem", "kernel.shmmax", "kernel.shm_rmid_forced", "fs.mqueue.msg_max"],
)
def test_ipc_sysctls(name: str) -> None:
    check_config(with_sysctl(base(), name), BUNDLE)
    doc = with_sysctl(ns(base(), "mount", "uts", "network"), name)
    assert rejected(doc) == f"linux.sysctl[{name!r}]: not allowed in the host's IPC namespace"


def test_net_sysctls() -> None:
    name = "net.ipv4.ip_forward"
    check_config(with_sysctl(base(), name), BUNDLE)
    doc = with_sysctl(ns(base(), "mount", "uts", "ipc"), name)
    assert rejected(doc) == f"linux.sysctl[{name!r}]: not allowed in the host's network namespace"
    joined = with_sysctl(ns(base(), "mount", "uts", network="/run/netns/x"), name)
    check_config(joined, BUNDLE)
    check_config(joined, BUNDLE, is_host_netns=lambda path: False)
    assert "joined via /run/netns/x" in rejected(joined, is_host_netns=lambda path: True)


def test_uts_sysctls() -> None:
    check_config(with_sysctl(base(), "kernel.domainname"), BUNDLE)
    doc = with_sysctl(base(), "kernel.hostname")
    assert rejected(doc) == (
        "linux.sysctl['kernel.hostname']: conflicts with the \"hostname\" field; set that instead"
    )
    doc = with_sysctl(ns(base(), "mount", "ipc"), "kernel.domainname")
    del doc["hostname"]
    assert rejected(doc) == (
        "linux.sysctl['kernel.domainname']: is not in a separate kernel namespace"
    )


@pytest.mark.parametrize("name", ["vm.swappiness", "kernel.pid_max", "fs.file-max", "kernel.msgfoo"])
def test_non_namespaced_sysctls(name: str) -> None:
    assert rejected(with_sysctl(base(), name)) == (
        f"linux.sysctl[{name!r}]: is not in a separate kernel namespace"
    )


# --- mounts ----------------------------------------------------------------

@pytest.mark.parametrize(
    ("given", "expected"),
    [("/proc", "/proc"), ("proc", "/proc"), ("dev/./shm/", "/dev/shm"), ("//x//y", "/x/y"),
     ("../../etc", "/etc"), ("/a/b/../c", "/a/c"), (".", "/")],
)
def test_mount_destinations_normalised(given: str, expected: str) -> None:
    assert normalize_destination(given) == expected
    doc = base()
    doc["mounts"].append({"destination": given, "type": "tmpfs", "source": "tmpfs"})
    check_config(doc, BUNDLE)
    assert doc["mounts"][-1]["destination"] == expected


def test_empty_mount_destination() -> None:
    doc = base()
    doc["mounts"].append({"destination": ""})
    assert rejected(doc) == f"mounts[{len(doc['mounts']) - 1}].destination: must not be empty"


# --- process ---------------------------------------------------------------

def test_process_required() -> None:
    doc = base()
    del doc["process"]
    assert rejected(doc) == "process: must be specified to create a container"


def test_args_non_empty() -> None:
    doc = base()
    doc["process"]["args"] = []
    assert rejected(doc) == "process.args: must not be empty"


def test_cwd_absolute() -> None:
    doc = base()
    doc["process"]["cwd"] = "home"
    assert rejected(doc) == "process.cwd: 'home' is not an absolute path"


@pytest.mark.parametrize("key", ["uid", "gid"])
def test_user_id_range(key: str) -> None:
    doc = base()
    doc["process"]["user"][key] = 2**32 - 1
    assert rejected(doc) == f"process.user.{key}: 4294967295 is out of range (0-4294967294)"
    doc["process"]["user"][key] = 2**32 - 2
    check_config(doc, BUNDLE)


def test_additional_gid_range() -> None:
    doc = base()
    doc["process"]["user"]["additionalGids"] = [1, 2**32 - 1]
    assert rejected(doc).startswith("process.user.additionalGids[1]: 4294967295 is out of range")


def test_rlimits() -> None:
    assert len(RLIMITS) == 16
    doc = base()
    doc["process"]["rlimits"] = [
        {"type": name, "soft": 1, "hard": 2} for name in sorted(RLIMITS)
    ]
    check_config(doc, BUNDLE)
    doc["process"]["rlimits"] = [{"type": "RLIMIT_FOO", "soft": 1, "hard": 1}]
    assert rejected(doc) == "process.rlimits[0].type: unknown resource limit 'RLIMIT_FOO'"
    doc["process"]["rlimits"] = [
        {"type": "RLIMIT_NOFILE", "soft": 1, "hard": 1},
        {"type": "RLIMIT_CORE", "soft": 1, "hard": 1},
        {"type": "RLIMIT_NOFILE", "soft": 2, "hard": 2},
    ]
    assert rejected(doc) == (
        "process.rlimits[2].type: 'RLIMIT_NOFILE' is duplicated (first at process.rlimits[0])"
    )
    doc["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 10, "hard": 5}]
    assert rejected(doc) == "process.rlimits[0]: soft limit 10 exceeds hard limit 5"


def test_capabilities() -> None:
    assert len(CAPABILITIES) == 41 and CAPABILITIES[40] == "CAP_CHECKPOINT_RESTORE"
    assert CAPABILITIES[21] == "CAP_SYS_ADMIN" and CAPABILITIES[38] == "CAP_PERFMON"
    doc = base()
    for kind in ("bounding", "effective", "inheritable", "permitted", "ambient"):
        doc["process"]["capabilities"][kind] = list(CAPABILITIES)
    check_config(doc, BUNDLE)
    doc["process"]["capabilities"]["ambient"] = ["CAP_KILL", "CAP_FLY"]
    assert rejected(doc) == "process.capabilities.ambient[1]: unknown capability 'CAP_FLY'"
    doc["process"]["capabilities"]["ambient"] = ["kill"]
    assert rejected(doc) == "process.capabilities.ambient[0]: unknown capability 'kill'"


# --- console -----------------------------------------------------------------

def test_console() -> None:
    tty = base()
    no_tty = base()
    no_tty["process"]["terminal"] = False
    check_console(tty, "/run/sock")
    check_console(no_tty, None)
    check_console(tty, None, detach=False)
    check_console(no_tty, None, detach=False)
    with pytest.raises(ConfigError) as info:
        check_console(tty, None)
    assert str(info.value) == (
        "cannot allocate tty if pyrunc will detach without setting console socket"
    )
    for doc, detach in ((no_tty, True), (tty, False), (no_tty, False)):
        with pytest.raises(ConfigError) as info:
            check_console(doc, "/run/sock", detach=detach)
        assert str(info.value) == (
            "cannot use console socket if pyrunc will not detach or allocate tty"
        )
    # consoleSize without a terminal is harmless.
    no_tty["process"]["consoleSize"] = {"height": 10, "width": 10}
    check_console(no_tty, None)
    check_config(no_tty, BUNDLE)


# --- container IDs -----------------------------------------------------------

@pytest.mark.parametrize("cid", ["a", "c1", "my_container", "a.b-c+d", "a,b", "..a", "a..", "0" * 300])
def test_valid_container_ids(cid: str) -> None:
    assert valid_container_id(cid)


@pytest.mark.parametrize("cid", ["", ".", "..", "a/b", "/a", "a b", "a\n", "é", "a:b", "a*"])
def test_invalid_container_ids(cid: str) -> None:
    assert not valid_container_id(cid)


@settings(max_examples=300)
@given(st.text(alphabet=st.characters(max_codepoint=0x17F), max_size=6))
def test_container_id_rule_is_runcs_regexp(cid: str) -> None:
    """The same verdict as runc's regexp ^[\\w+-.]+$ (ASCII \\w), minus "." and ".."."""
    import re

    expected = re.fullmatch(r"[\w+-.]+", cid, re.ASCII) is not None and cid not in (".", "..")
    assert valid_container_id(cid) == expected

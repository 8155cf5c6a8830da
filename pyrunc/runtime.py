"""The container use cases as library calls: create, start, run, state, kill, delete.

Everything here raises PyruncError subclasses with one-line messages; the CLI
prints them.  Nothing here prints.  Imports of heavy or rarely needed modules
(jsonschema, the cgroup manager, the planner) happen inside the functions that
need them, so `state`, `kill` and `delete` stay cheap.
"""

from __future__ import annotations

# The C module under `signal`: the wrapper adds Signals enums (and with them
# ~4 ms of imports on every command) that pyrunc has no use for.
import _signal as signal
import errno
import os
import time

from pyrunc import OCI_VERSION, trace
from pyrunc.errors import CgroupError, ContainerError, PyruncError
from pyrunc.state.freezer import freezer_state
from pyrunc.state.procs import is_alive, start_time
from pyrunc.state.store import FIFO_NAME, ContainerRecord, Store, write_atomic

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

CREATED, RUNNING, STOPPED, PAUSED, CREATING = "created", "running", "stopped", "paused", "creating"

# Test hook (tests/security/test_faults.py): PYRUNC_TEST_STOP_AT=<point> makes
# create SIGSTOP itself at that point ("reserved", "cgroup", "spawned", "ready")
# so a test can kill -9 it there.  Unset, it costs one string comparison.
_STOP_AT = os.environ.get("PYRUNC_TEST_STOP_AT")


def _stop_at(point: str) -> None:
    if _STOP_AT == point:
        os.kill(os.getpid(), signal.SIGSTOP)


class CreateOptions:
    """Flags of `create` and `run` (a plain class: no dataclasses import on the hot path)."""

    __slots__ = ("bundle", "pid_file", "console_socket", "no_pivot", "no_new_keyring",
                 "preserve_fds", "detach", "extra_env", "console", "pidfd_socket", "rootless",
                 "systemd_cgroup")

    def __init__(self, bundle: str = ".", pid_file: str | None = None,
                 console_socket: str | None = None, no_pivot: bool = False,
                 no_new_keyring: bool = False, preserve_fds: int = 0, detach: bool = True,
                 extra_env: dict[str, str] | None = None, console: Any = None,
                 pidfd_socket: str | None = None, rootless: bool = False,
                 systemd_cgroup: bool = False) -> None:
        self.bundle = bundle
        # --systemd-cgroup: the cgroup is a transient systemd unit.
        self.systemd_cgroup = systemd_cgroup
        # runc's "rootless cgroups": cgroups that cannot be made are skipped.
        self.rootless = rootless
        self.pidfd_socket = pidfd_socket
        self.pid_file = pid_file
        self.console_socket = console_socket
        self.no_pivot = no_pivot
        self.no_new_keyring = no_new_keyring
        self.preserve_fds = preserve_fds
        self.detach = detach
        self.extra_env: dict[str, str] = {} if extra_env is None else extra_env
        # A connected console socket the caller keeps the other end of (the
        # foreground terminal of `run`); used instead of console_socket.
        self.console = console

    def __repr__(self) -> str:
        return "CreateOptions(" + ", ".join(f"{k}={getattr(self, k)!r}" for k in self.__slots__) + ")"


def _now_rfc3339() -> str:
    t = time.time()
    secs = int(t)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{int((t - secs) * 1e9):09d}Z"


def _cgroup_manager(record: ContainerRecord) -> Any:
    from pyrunc.linux.cgroups import manager_from_state

    return manager_from_state(record.cgroup) if record.cgroup else None


def status_of(store: Store, record: ContainerRecord) -> str:
    """The container's status, derived from its init's pid and start time."""
    if record.pid == 0:
        return CREATING
    if not is_alive(record.pid, record.pid_start):
        return STOPPED
    # Read straight from the recorded paths: importing the cgroup package
    # just for this cost more than the rest of `state`.
    if record.cgroup and freezer_state(record.cgroup) == "frozen":
        return PAUSED
    if os.path.exists(store.path(record.id, FIFO_NAME)):
        return CREATED
    return RUNNING


def oci_state(store: Store, record: ContainerRecord) -> dict[str, Any]:
    """The state document of the runtime-spec, with runc's extra fields."""
    status = status_of(store, record)
    doc: dict[str, Any] = {
        "ociVersion": OCI_VERSION,
        "id": record.id,
        "pid": record.pid if status != STOPPED else 0,
        "status": status,
        "bundle": record.bundle,
        "rootfs": record.rootfs,
        "created": record.created,
    }
    # runc's field order: annotations (when there are any) before owner;
    # a Go map, so its keys come sorted.
    if record.annotations:
        doc["annotations"] = dict(sorted(record.annotations.items()))
    doc["owner"] = record.owner
    return doc


def _check_id(container_id: str) -> None:
    from pyrunc.spec.semantic import valid_container_id

    if not valid_container_id(container_id):
        raise ContainerError(f"invalid container ID format: {container_id}")


def _warn_stderr(message: str) -> None:
    import sys

    sys.stderr.write(f"warning: {message}\n")


def _poststop(config: dict[str, Any], container_id: str, bundle: str,
              warn: Callable[[str], None] | None) -> None:
    """Run the poststop hooks of a destroyed container; failures are only warnings."""
    if not (config.get("hooks") or {}).get("poststop"):
        return
    from pyrunc.linux.hooks import poststop

    for problem in poststop(config, container_id, bundle):
        (warn or _warn_stderr)(problem)


def _init_error_message(err: Any) -> str:
    """Word a failure reported by pyrunc-init the way runc words it."""
    from pyrunc.plan import protocol as P

    step = err.step
    if step is not None and step.op == P.OP_HOOK:
        return f"unable to start container process: error running {err.text}"
    if step is not None and step.op == P.OP_CHECK_EXEC:
        prog = step.strs[0].decode(errors="replace")
        if err.errno == errno.ENOENT and "/" not in prog:
            detail = "executable file not found in $PATH"
        elif err.errno == errno.ENOENT:
            detail = f"stat {prog}: no such file or directory"
        else:
            detail = os.strerror(err.errno).lower()
        return f'unable to start container process: exec: "{prog}": {detail}'
    if step is not None and step.op in (P.OP_SELINUX_LABEL, P.OP_KEYRING) and \
            err.text.startswith(("write /proc/", "open /proc/")):
        label = step.strs[-1].decode(errors="replace")
        return (f'unable to apply SELinux label "{label}" (process.selinuxLabel): '
                f"{err.text}: {os.strerror(err.errno).lower()}")
    if step is not None and step.op == P.OP_APPARMOR:
        from pyrunc.plan.procattrs import apparmor_not_loaded

        profile = step.strs[0].decode(errors="replace")
        if err.errno == errno.ENOENT:
            return apparmor_not_loaded(profile)
        return (f"unable to apply apparmor profile: process.apparmorProfile \"{profile}\": "
                f"{err.text}: {os.strerror(err.errno).lower()}")
    return f"unable to start container process: {err}"


def create(store: Store, container_id: str, opts: CreateOptions,
           on_init_pid: Callable[[int], None] | None = None,
           warn: Callable[[str], None] | None = None) -> ContainerRecord:
    """Create a container: everything up to the wait for `start`.

    On any failure nothing is left behind: no process, cgroup or state dir
    (and, the container being destroyed, its poststop hooks run; their
    failures go to ``warn``).
    """
    from pyrunc.linux import facts as host_facts
    from pyrunc.linux.cgroups import manager_for
    from pyrunc.linux.idmap import write_id_maps
    from pyrunc.linux.initproc import InitError, run_init
    from pyrunc.linux.seccomp_listener import open_listener
    from pyrunc.plan.builder import build_create_plan
    from pyrunc.spec.semantic import check_config, check_console
    from pyrunc.spec.validate import load_config, validate_config

    _check_id(container_id)
    bundle = os.path.abspath(opts.bundle)
    config = load_config(bundle)
    validate_config(config)
    check_config(config, bundle)
    check_console(config, opts.console_socket, detach=opts.detach)
    from pyrunc.linux.netdevs import check_host_support, collect_addresses, with_netdev_sync

    check_host_support(config, config.get("process") or {})
    linux = config.get("linux") or {}
    unprivileged = os.geteuid() != 0
    if unprivileged:
        from pyrunc.linux.userns import check_mappings

        check_mappings(linux)
    from pyrunc.linux.nspaths import check_namespace_paths

    check_namespace_paths(linux)
    rootfs = host_facts.resolve_rootfs(bundle, config["root"]["path"])
    process = config.get("process") or {}
    console = _console_for(bool(process.get("terminal")), opts.console, opts.console_socket)
    try:
        directory = store.reserve(container_id)
        _stop_at("reserved")
    except BaseException:
        if console is not None and console is not opts.console:
            console.close()
        raise
    fifo_fd = console_fd = -1
    idmap_fds: dict[int, int] = {}
    listener = None
    manager = None
    launching = False
    launched = None
    try:
        fifo_path = os.path.join(directory, FIFO_NAME)
        os.mkfifo(fifo_path, 0o622)
        # As runc does: exact bits whatever the umask, owned by the container's
        # root, which may be an unprivileged host uid in a new user namespace.
        os.chmod(fifo_path, 0o622)
        if not unprivileged:
            # (An unprivileged caller may not give files away; 0622 lets the init write.)
            os.chown(fifo_path, *_container_root_ids(linux))
        fifo_fd = os.open(fifo_path, os.O_PATH | os.O_CLOEXEC)
        if opts.systemd_cgroup:
            from pyrunc.linux.cgroups import systemd

            candidate = systemd.manager_for(linux.get("cgroupsPath"), container_id,
                                            rootless=systemd.use_user_manager(unprivileged=unprivileged,
                                                                              rootless=opts.rootless),
                                            annotations=config.get("annotations") or {})
        else:
            candidate = manager_for(linux.get("cgroupsPath"), container_id)
        # Checked before `manager` is set: a refused cgroup belongs to
        # someone else, so the clean-up below must not kill or remove it.
        candidate.check_fit()
        manager = candidate
        trace.debug(f"container {container_id}: bundle {bundle}, cgroup {' '.join(manager.dirs())}")
        # Recorded before the cgroup exists: a create killed from here on
        # leaves a state that `delete --force` cleans up, cgroup included.
        # Written once more, with the pid, when the init is ready.
        record = ContainerRecord(
            id=container_id, bundle=bundle, rootfs=rootfs, created=_now_rfc3339(),
            annotations=dict(config.get("annotations") or {}), cgroup=manager.to_state(),
            config=config, no_new_keyring=opts.no_new_keyring)
        store.save(record)
        if opts.rootless and not opts.systemd_cgroup:
            from pyrunc.linux.rootless_cgroups import prepare

            manager = prepare(manager, linux, record, store)
        else:
            manager.create()
            manager.apply(linux.get("resources") or {})
        _stop_at("cgroup")
        listen = _listen_fds()
        preserved = list(range(3, 3 + listen + opts.preserve_fds))
        first_closed = 3 + len(preserved)
        if fifo_fd < first_closed:
            raise PyruncError(f"fd {fifo_fd} collides with the preserved fds")
        facts = host_facts.gather(config, bundle, rootfs, fifo_fd=fifo_fd,
                                  first_closed_fd=first_closed,
                                  no_pivot=opts.no_pivot,
                                  container_cgroup_dirs=_cgroup_dirs_shown(manager))
        facts.net_addresses = collect_addresses(linux)
        facts.container_id = container_id
        facts.new_keyring = not opts.no_new_keyring
        if unprivileged:
            from pyrunc.linux.userns import setgroups_denied

            facts.setgroups_denied = setgroups_denied(linux)
            facts.in_user_namespace = True
        else:
            from pyrunc.linux.userns import in_user_namespace

            facts.in_user_namespace = in_user_namespace()
        inherited = [fifo_fd, *preserved]
        from pyrunc.plan.mounts import is_idmapped

        if any(is_idmapped(m) for m in config.get("mounts") or ()):
            _idmap_userns_fds(config, bundle, first_closed, idmap_fds)
            facts.idmap_userns_fds = idmap_fds
            inherited += idmap_fds.values()
        if console is not None:
            from pyrunc.linux.tty import fd_at_or_above

            console_fd = fd_at_or_above(console, first_closed)
            facts.console_fd = console_fd
            inherited.append(console_fd)
        listener = open_listener(linux.get("seccomp"), first_closed)
        if listener is not None:
            facts.seccomp_fds = listener.fds
            inherited += listener.fds
        steps = build_create_plan(_with_listen_env(config, listen), facts)
        launching = True

        if unprivileged:
            from pyrunc.linux.userns import write_unprivileged

            map_ids = write_unprivileged
        else:
            map_ids = write_id_maps

        def on_idmap(pid: int) -> None:
            map_ids(pid, linux.get("uidMappings") or (), linux.get("gidMappings") or ())

        on_sync = None
        if config.get("hooks"):
            from pyrunc.linux.hooks import create_sync

            on_sync = create_sync(config, container_id, bundle)
        try:
            def joined(pid: int) -> None:
                if manager is not None:
                    manager.add_pid(pid)
                _stop_at("spawned")

            launched = run_init(steps, inherit_fds=inherited, before_plan=joined,
                                on_idmap=on_idmap,
                                on_sync=with_netdev_sync(linux, on_sync))
        except InitError as e:
            raise PyruncError(_init_error_message(e)) from None
        launched.sock.close()
        if listener is not None:
            # The filter loads after `start`: the state is in place long before.
            listener.write_state(_listener_state(record, launched.pid, CREATING))
        record.pid = launched.pid
        record.pid_start = start_time(launched.pid)
        if manager is not None:
            # The systemd driver learns the unit's real cgroup once it has started.
            record.cgroup = manager.to_state()
        store.save(record)
        trace.debug(f"container {container_id}: created, init pid {launched.pid}, "
                    f"waiting on {fifo_path}")
        _stop_at("ready")
        if on_init_pid is not None:
            on_init_pid(launched.pid)
        if opts.pidfd_socket:
            from pyrunc.linux.pidfd_socket import send_pidfd

            send_pidfd(opts.pidfd_socket, launched.pid)
        if opts.pid_file:
            write_atomic(os.path.abspath(opts.pid_file), str(launched.pid))
        return record
    except BaseException:
        if launched is not None:
            _kill_and_wait(launched.pid, 0)
        if manager is not None:
            # Whatever got into the cgroup dies with the failed create, even a
            # process whose pid never reached us.
            _quietly(lambda: manager.kill_all(signal.SIGKILL))
            _quietly(manager.destroy)
        store.remove(container_id)
        if launching:
            _poststop(config, container_id, bundle, warn)
        raise
    finally:
        for fd in idmap_fds.values():
            os.close(fd)
        if fifo_fd >= 0:
            os.close(fifo_fd)
        if console_fd >= 0:
            os.close(console_fd)
        if console is not None and console is not opts.console:
            console.close()
        if listener is not None:
            listener.close()


def _cgroup_dirs_shown(manager: Any) -> list[str]:
    """The cgroup directories a `cgroup` mount shows: the container's, or (its cgroup
    skipped by rootless mode) the ones it runs in, pyrunc's own."""
    if manager is not None:
        return list(manager.dirs())
    from pyrunc.linux.rootless_cgroups import own_cgroup_dirs

    return own_cgroup_dirs()


def _listener_state(record: ContainerRecord, process_pid: int, status: str) -> bytes:
    """What the seccomp agent gets with the notify fd (runc's ContainerProcessState)."""
    from pyrunc.plan.seccomp import listener_state

    seccomp = (record.config.get("linux") or {}).get("seccomp") or {}
    init_pid = process_pid if status == CREATING else record.pid
    return listener_state(seccomp, container_id=record.id, status=status, init_pid=init_pid,
                          process_pid=process_pid, bundle=record.bundle,
                          annotations=record.annotations, oci_version=OCI_VERSION)


def _console_for(terminal: bool, given: Any, path: str | None) -> Any:
    """The console socket of a terminal process: the caller's, or connected to path."""
    if not terminal:
        return None
    if given is not None:
        return given
    if not path:
        raise PyruncError("process.terminal is set but there is no console socket")
    from pyrunc.linux.tty import connect_console_socket

    return connect_console_socket(path)


def _with_listen_env(config: dict[str, Any], listen: int) -> dict[str, Any]:
    """As runc: with socket-activation fds the process is told LISTEN_FDS=N, LISTEN_PID=1."""
    if not listen:
        return config
    process = dict(config.get("process") or {})
    env = [e for e in process.get("env") or () if not e.startswith(("LISTEN_FDS=", "LISTEN_PID="))]
    process["env"] = [*env, f"LISTEN_FDS={listen}", "LISTEN_PID=1"]
    return {**config, "process": process}


def _idmap_userns_fds(config: dict[str, Any], bundle: str, lowest: int,
                      out: dict[int, int]) -> None:
    """A user namespace fd (numbered >= lowest) for each idmapped mount, into out."""
    import fcntl

    from pyrunc.linux.idmap import userns_fd
    from pyrunc.plan.mounts import idmap_requests

    for request in idmap_requests(config, bundle):
        fd = userns_fd(request.uid_mappings, request.gid_mappings)
        try:
            out[request.index] = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, lowest)
        finally:
            os.close(fd)


def _host_id(mappings: Any, container_id: int) -> int:
    for m in mappings or ():
        if m["containerID"] <= container_id < m["containerID"] + m["size"]:
            return int(m["hostID"]) + container_id - int(m["containerID"])
    return container_id


def _container_root_ids(linux: dict[str, Any]) -> tuple[int, int]:
    """Host uid and gid of the container's root (0, 0 without a new user namespace)."""
    new_userns = any(ns["type"] == "user" and not ns.get("path")
                     for ns in linux.get("namespaces") or ())
    if not new_userns:
        return 0, 0
    return (_host_id(linux.get("uidMappings"), 0), _host_id(linux.get("gidMappings"), 0))


def _listen_fds() -> int:
    # go-systemd's rule, which runc uses: the fds are ours only if LISTEN_PID names us.
    if os.environ.get("LISTEN_PID") != str(os.getpid()):
        return 0
    try:
        return max(0, int(os.environ.get("LISTEN_FDS", "0")))
    except ValueError:
        return 0


def _quietly(fn: Callable[[], Any]) -> None:
    try:
        fn()
    except (OSError, PyruncError):
        pass


def _kill_and_wait(pid: int, pid_start: int, timeout: float = 10.0) -> None:
    """SIGKILL a process that may not be our child and wait until it is gone."""
    if not is_alive(pid, pid_start):
        return
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:
        return
    try:
        if pid_start and start_time(pid) != pid_start:
            return
        signal.pidfd_send_signal(pidfd, signal.SIGKILL)
        import select

        select.select([pidfd], [], [], timeout)
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
    except ProcessLookupError:
        pass
    finally:
        os.close(pidfd)


def _init_pidfd(record: ContainerRecord, gone: str) -> int:
    """A pidfd of the container's init, proven to be the process we started.

    The start time is checked after the pidfd is open, so the fd cannot end
    up naming a process that reused the pid; ContainerError(gone) otherwise.
    """
    try:
        pidfd = os.pidfd_open(record.pid)
    except OSError:
        raise ContainerError(gone) from None
    if start_time(record.pid) != record.pid_start:
        os.close(pidfd)
        raise ContainerError(gone)
    return pidfd


def _require(store: Store, container_id: str) -> ContainerRecord:
    return store.load(container_id)


def start(store: Store, container_id: str) -> ContainerRecord:
    """Let a created container's init exec the user process, then run poststart hooks.

    A failing startContainer or poststart hook fails `start` and leaves the
    container stopped (its init killed), for `delete` to clean up.
    """
    record = _require(store, container_id)
    status = status_of(store, record)
    if status == STOPPED:
        raise ContainerError("cannot start a container that has stopped")
    if status != CREATED:
        raise ContainerError("cannot start an already running container")
    fifo = store.path(container_id, FIFO_NAME)
    # The pidfd is taken before the fifo is opened: opening it lets the init
    # run, and a short-lived process may exit (and be reaped by a subreaper)
    # at once.  A byte read from the fifo means the init went on to exec.
    pidfd = _init_pidfd(record, "cannot start a container that has stopped")
    try:
        fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            answer = _await_fifo_byte(fd, pidfd)
        finally:
            os.close(fd)
    finally:
        os.close(pidfd)
    os.unlink(fifo)
    trace.debug(f"container {container_id}: exec.fifo opened, init pid {record.pid} "
                f"answered {answer[:1].decode(errors='replace')!r}")
    if answer != b"0":
        # pyrunc-init wrote "E" + why (a step after the release failed: a
        # startContainer hook, rlimits, ids, capabilities, cwd...) and exits.
        _kill_and_wait(record.pid, record.pid_start)
        why = answer[1:].decode(errors="replace")
        if " hook #" in why:
            raise ContainerError(f"error running {why}")
        raise ContainerError(f"unable to start container process: {why}")
    record.started = True
    trace.debug(f"container {container_id}: started")
    if (record.config.get("hooks") or {}).get("poststart"):
        from pyrunc.linux.hooks import HookError, poststart

        try:
            poststart(record.config, record.id, record.pid, record.bundle)
        except HookError:
            manager = _cgroup_manager(record)
            if manager is not None:
                _quietly(lambda: manager.kill_all(signal.SIGKILL))
            _kill_and_wait(record.pid, record.pid_start)
            raise
    return record


def _await_fifo_byte(fd: int, pidfd: int) -> bytes:
    """Wait for the init's answer on exec.fifo ("0" or "E<why>"), failing if it dies first."""
    import select

    poller = select.poll()
    poller.register(fd, select.POLLIN)
    poller.register(pidfd, select.POLLIN)
    while True:
        events = dict(poller.poll())
        if fd in events:
            answer = os.read(fd, 1024)
            if answer:
                return answer
            # No writer yet (POLLHUP): the init has not reached the fifo.
            if pidfd not in events:
                time.sleep(0.001)
                continue
        if pidfd in events:
            # It may have written just before exiting.
            answer = os.read(fd, 1024)
            if answer:
                return answer
            raise ContainerError("cannot start a container that has stopped")


def state(store: Store, container_id: str) -> dict[str, Any]:
    """The OCI state document of one container."""
    return oci_state(store, _require(store, container_id))


def list_states(store: Store) -> list[dict[str, Any]]:
    """State documents of every container under the root."""
    states = []
    for cid in store.ids():
        try:
            doc = oci_state(store, store.load(cid))
            # As runc's list: the owner is the user owning the state directory.
            doc["owner"] = _owner_name(os.stat(store.path(cid)).st_uid)
        except (PyruncError, FileNotFoundError):
            continue
        states.append(doc)
    return states


def _owner_name(uid: int) -> str:
    """The user name of uid, or "#uid" when it has none (runc's list)."""
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"#{uid}"


def kill(store: Store, container_id: str, sig: int, all_processes: bool = False) -> None:
    """Send a signal to the container's init (or to every process with --all)."""
    record = _require(store, container_id)
    status = status_of(store, record)
    if all_processes:
        manager = _cgroup_manager(record)
        if status == STOPPED and manager is None:
            return
        if manager is not None:
            manager.kill_all(sig)
            return
    if status in (STOPPED, CREATING):
        raise ContainerError("container not running")
    pidfd = _init_pidfd(record, "container not running")
    trace.debug(f"container {container_id}: signal {sig} to init pid {record.pid}")
    try:
        signal.pidfd_send_signal(pidfd, sig)
    except ProcessLookupError:
        raise ContainerError("container not running") from None
    finally:
        os.close(pidfd)
    if sig == signal.SIGKILL and status == PAUSED:
        # A frozen task only dies once thawed (runc thaws after SIGKILL too).
        manager = _cgroup_manager(record)
        if manager is not None:
            _quietly(manager.thaw)


def _drain_cgroup(manager: Any, timeout: float = 5.0) -> None:
    """Kill what is left in the container's cgroup and wait until it is empty.

    Without a pid namespace, processes may outlive the init; and a killed
    process leaves the cgroup only once it has exited, so removing the
    directory right after the signal could fail with EBUSY.
    """
    deadline = time.monotonic() + timeout
    try:
        while manager.pids():
            _quietly(lambda: manager.kill_all(signal.SIGKILL))
            if time.monotonic() > deadline:
                return
            time.sleep(0.005)
    except (OSError, PyruncError):
        return


def destroy(store: Store, record: ContainerRecord,
            warn: Callable[[str], None] | None = None) -> None:
    """Remove what a stopped container still holds: cgroup and state dir.

    A cgroup that cannot be removed (a process the kill could not reach
    still holds it) is reported through ``warn`` and the container is
    removed all the same, as runc does: the caller can always get rid of a
    container whose processes are gone.
    """
    manager = _cgroup_manager(record)
    if manager is not None:
        try:
            manager.destroy()
        except CgroupError as e:
            (warn or _warn_stderr)(f"failed to remove the container's cgroup: {e}")
    store.remove(record.id)


def delete(store: Store, container_id: str, force: bool = False,
           warn: Callable[[str], None] | None = None) -> None:
    """Delete a container; a running one only with force (it is killed).

    The poststop hooks run once it is destroyed; their failures go to
    ``warn`` and do not fail the delete.
    """
    if not store.exists(container_id):
        if force:
            return
        raise ContainerError("container does not exist")
    try:
        record = store.load(container_id)
    except ContainerError:
        # A directory without state: a create that was interrupted early.
        store.remove(container_id)
        return
    status = status_of(store, record)
    if status in (RUNNING, PAUSED) and not force:
        raise ContainerError(
            f"cannot delete container {container_id} that is not stopped: {status}")
    manager = _cgroup_manager(record)
    if status != STOPPED:
        if manager is not None and status == PAUSED:
            _quietly(manager.thaw)
        if manager is not None:
            _quietly(lambda: manager.kill_all(signal.SIGKILL))
        _kill_and_wait(record.pid, record.pid_start)
    if manager is not None:
        _drain_cgroup(manager)
    destroy(store, record, warn)
    trace.debug(f"container {container_id}: deleted (was {status})")
    _poststop(record.config, record.id, record.bundle, warn)


_FORWARDED = ("SIGHUP", "SIGINT", "SIGQUIT", "SIGTERM", "SIGUSR1", "SIGUSR2", "SIGWINCH",
              "SIGCONT", "SIGTSTP", "SIGTTIN", "SIGTTOU", "SIGALRM", "SIGPIPE")


def _exit_status(wait_status: int) -> int:
    if os.WIFSIGNALED(wait_status):
        return 128 + os.WTERMSIG(wait_status)
    return os.WEXITSTATUS(wait_status)


class _Forwarder:
    """Forward the signals pyrunc receives to one process (once its pid is known)."""

    def __init__(self) -> None:
        self.pid = 0
        self.pending: list[int] = []
        for name in _FORWARDED:
            signal.signal(getattr(signal, name), self._handle)

    def _handle(self, signum: int, _frame: Any) -> None:
        if not self.pid:
            self.pending.append(signum)
            return
        try:
            os.kill(self.pid, signum)
        except ProcessLookupError:
            pass

    def attach(self, pid: int) -> None:
        """Start forwarding to pid, delivering what arrived before."""
        self.pid = pid
        for signum in self.pending:
            self._handle(signum, None)
        self.pending.clear()


def _reap_until(pid: int) -> int:
    """Reap children (we are a subreaper) until pid exits; returns its exit status."""
    while True:
        try:
            reaped, wait_status = os.wait()
        except InterruptedError:
            continue
        except ChildProcessError:
            return 255
        if reaped == pid:
            status = _exit_status(wait_status)
            trace.debug(f"process exited: pid {pid}, status {status}")
            return status


def run(store: Store, container_id: str, opts: CreateOptions, keep: bool = False,
        warn: Callable[[str], None] | None = None) -> int:
    """`run`: create + start; in the foreground wait and return the exit status.

    pyrunc becomes a child subreaper so the container's init (whose parent,
    the fork stage of pyrunc-init, exits) is re-parented to it and can be
    reaped; signals pyrunc receives are forwarded to the init.
    """
    from pyrunc._shim import lib

    if opts.detach:
        create(store, container_id, opts, warn=warn)
        try:
            start(store, container_id)
        except BaseException:
            _quietly(lambda: delete(store, container_id, force=True, warn=warn))
            raise
        return 0
    lib.pyrunc_set_child_subreaper(1)
    forwarder = _Forwarder()
    ours = None
    if not opts.console_socket and opts.console is None and _wants_terminal(opts.bundle):
        # No console socket in the foreground: pyrunc is the receiver.
        import socket

        ours, opts.console = socket.socketpair(socket.AF_UNIX,
                                               socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        record = create(store, container_id, opts, warn=warn)
        if ours is not None:
            opts.console.close()
            return _foreground_terminal(ours, forwarder, record.pid,
                                        lambda: start(store, container_id))
        start(store, container_id)
        forwarder.attach(record.pid)
        return _reap_until(record.pid)
    finally:
        if ours is not None:
            ours.close()
        if not keep:
            _quietly(lambda: delete(store, container_id, force=True, warn=warn))


def _wants_terminal(bundle: str) -> bool:
    from pyrunc.spec.validate import load_config

    try:
        return bool((load_config(os.path.abspath(bundle)).get("process") or {}).get("terminal"))
    except PyruncError:
        return False  # create reports the problem


def _foreground_terminal(ours: Any, forwarder: _Forwarder, pid: int,
                         go: Callable[[], Any] | None = None) -> int:
    """Receive the master on our end of the console socketpair, relay until pid exits."""
    from pyrunc.linux.tty import TerminalRelay, recv_master

    master, _name = recv_master(ours)
    relay = TerminalRelay(master)
    try:
        relay.start()
        if go is not None:
            go()
        forwarder.attach(pid)
        relay.pump(pid)
    finally:
        relay.close()
    return _reap_until(pid)


class ExecOptions:
    """Flags of `exec` that are not part of the process itself."""

    __slots__ = ("detach", "pid_file", "preserve_fds", "ignore_paused", "console_socket", "cgroup",
                 "pidfd_socket")

    def __init__(self, detach: bool = False, pid_file: str | None = None, preserve_fds: int = 0,
                 ignore_paused: bool = False, console_socket: str | None = None,
                 cgroup: list[str] | None = None, pidfd_socket: str | None = None) -> None:
        self.detach = detach
        self.pidfd_socket = pidfd_socket
        self.pid_file = pid_file
        self.preserve_fds = preserve_fds
        self.ignore_paused = ignore_paused
        self.console_socket = console_socket
        self.cgroup: list[str] = [] if cgroup is None else cgroup  # --cgroup [controller[,...]:]path

    def __repr__(self) -> str:
        return "ExecOptions(" + ", ".join(f"{k}={getattr(self, k)!r}" for k in self.__slots__) + ")"


def exec_target(store: Store, container_id: str, ignore_paused: bool) -> tuple[ContainerRecord, str]:
    """The container to exec into and its status; refuses one that cannot take a process."""
    record = _require(store, container_id)
    status = status_of(store, record)
    if status == STOPPED:
        raise ContainerError("cannot exec in a stopped container")
    if status == PAUSED and not ignore_paused:
        raise ContainerError("cannot exec in a paused container (use --ignore-paused to override)")
    if status == CREATING:
        raise ContainerError("container not running")
    return record, status


def exec_process(store: Store, container_id: str, process: dict[str, Any],
                 opts: ExecOptions) -> int:
    """Run a new process in a running container; returns its exit status (0 if detached)."""
    from pyrunc._shim import lib
    from pyrunc.linux import facts as host_facts
    from pyrunc.linux.cgroups.base import add_pid_to
    from pyrunc.linux.initproc import InitError, await_exec, run_init
    from pyrunc.linux.seccomp_listener import open_listener
    from pyrunc.plan.builder import build_exec_plan
    from pyrunc.plan.process import parse_sub_cgroups
    from pyrunc.spec.semantic import check_console

    record, status = exec_target(store, container_id, opts.ignore_paused)
    trace.debug(f"container {container_id}: exec {process.get('args')!r} "
                f"({'detached' if opts.detach else 'foreground'})")
    check_console({"process": process}, opts.console_socket, detach=opts.detach)
    from pyrunc.linux.netdevs import check_host_support

    check_host_support(record.config, process)
    manager = _cgroup_manager(record)
    cgroup_dirs = _exec_cgroup_dirs(manager, parse_sub_cgroups(opts.cgroup))
    # As runc: exec passes --preserve-fds only; LISTEN_FDS is for the init.
    preserved = list(range(3, 3 + opts.preserve_fds))
    first_closed = 3 + len(preserved)
    ours = console = listener = None
    console_fd = -1
    if process.get("terminal"):
        from pyrunc.linux.tty import connect_console_socket, fd_at_or_above

        if opts.console_socket:
            console = connect_console_socket(opts.console_socket)
        else:
            import socket

            ours, console = socket.socketpair(socket.AF_UNIX,
                                              socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        if console is not None:
            console_fd = fd_at_or_above(console, first_closed)
        user = process.get("user") or {}
        home = host_facts.passwd_home(record.rootfs, int(user.get("uid", 0)))
        listener = open_listener((record.config.get("linux") or {}).get("seccomp"), first_closed)
        steps = build_exec_plan(record.config, record.pid, process, first_closed, home,
                                console_fd=console_fd,
                                seccomp_fds=listener.fds if listener else (-1, -1),
                                setgroups_denied=_setgroups_denied(record),
                                container_id=record.id, new_keyring=not record.no_new_keyring)
        if not opts.detach:
            lib.pyrunc_set_child_subreaper(1)
        forwarder = None if opts.detach else _Forwarder()

        def join_cgroups(pid: int) -> None:
            for d in cgroup_dirs:
                add_pid_to(d, pid)

        on_sync = None
        if listener is not None:
            container_status = status

            def state_for(pid: int) -> bytes:
                return _listener_state(record, pid, container_status)

            on_sync = listener.sync_handler(state_for, None)
        try:
            launched = run_init(steps, inherit_fds=[*preserved] + ([console_fd] if console else [])
                                + list(listener.fds if listener else ()),
                                before_plan=join_cgroups, on_sync=on_sync)
            try:
                await_exec(launched, steps)
            except BaseException:
                launched.sock.close()
                raise
        except InitError as e:
            raise PyruncError(_init_error_message(e)) from None
        finally:
            if console_fd >= 0:
                os.close(console_fd)
            if console is not None:
                console.close()
        launched.sock.close()
        if opts.pidfd_socket:
            from pyrunc.linux.pidfd_socket import send_pidfd

            send_pidfd(opts.pidfd_socket, launched.pid)
        if opts.pid_file:
            write_atomic(os.path.abspath(opts.pid_file), str(launched.pid))
        if forwarder is None:
            return 0
        if ours is not None:
            return _foreground_terminal(ours, forwarder, launched.pid)
        forwarder.attach(launched.pid)
        return _reap_until(launched.pid)
    finally:
        if ours is not None:
            ours.close()
        if listener is not None:
            listener.close()


def _setgroups_denied(record: ContainerRecord) -> bool:
    """Whether the container's user namespace has setgroups "deny" (rootless, own gid only)."""
    linux = record.config.get("linux") or {}
    if not any(ns.get("type") == "user" for ns in linux.get("namespaces") or ()):
        return False
    try:
        with open(f"/proc/{record.pid}/setgroups", "rb") as f:
            return f.read().strip() == b"deny"
    except OSError:
        return False


def _exec_cgroup_dirs(manager: Any, subs: dict[str, str]) -> list[str]:
    """The cgroup directories an exec'd process joins (--cgroup picks sub-cgroups)."""
    if manager is None:
        if subs:
            raise PyruncError("--cgroup: the container has no cgroup")
        return []
    if not subs:
        return manager.dirs()
    default = subs.get("")
    chosen: list[str] = []
    per_controller = getattr(manager, "paths", None)
    known = set(per_controller or ()) | {""}
    for controller in subs:
        if controller not in known:
            raise PyruncError(f"unable to create new parent process: unknown controller {controller} in SubCgroupPaths")
    if per_controller is None:  # cgroup v2: one directory
        sub = default or ""
        chosen.append(os.path.join(manager.path(""), sub) if sub else manager.path(""))
    else:
        for controller, d in per_controller.items():
            sub = subs.get(controller, default)
            chosen.append(os.path.join(d, sub) if sub else d)
        unified = manager.path("")
        if unified:
            chosen.append(os.path.join(unified, default) if default else unified)
    unique: list[str] = []
    for d in chosen:
        if not os.path.isdir(d):
            # runc's words (its tests match "adding pid ... cgroup.procs: no such file").
            raise PyruncError("unable to start container process: error adding pid to cgroups: "
                              f"open {d}/cgroup.procs: no such file or directory")
        if d not in unique:
            unique.append(d)
    return unique

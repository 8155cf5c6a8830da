"""PID 1 of an engine sandbox (run by ``unshare --mount --pid --net --fork``).

Usage: python3 nsinit.py SETUP_JSON [-- DAEMON ARGV...]

SETUP_JSON names a file with:
  "ready":   a path this process creates once the sandbox is set up,
  "overlay": [[host_dir, upper, work], ...] mount an overlay on host_dir whose
             lower layer is host_dir itself and whose upper layer is a temp
             dir, so that whatever an engine writes to its default places
             lands in a temp dir, inside this private mount namespace only.

  "keep_run": host dirs under /run (/run/systemd, /run/dbus) bound back into
             the new /run, through "stage", an empty dir of the sandbox's,
  "pid1":    false when run without a new PID namespace (the systemd driver's
             sandbox, whose scope unit is what gets stopped at the end).

It brings up lo, mounts a tmpfs on /run (engines keep sockets, shim state and
runtime roots there: /run/containerd, /run/docker, /run/libpod, ...), starts
the daemon if one is given, reaps every orphan, and exits when the daemon
exits or on SIGTERM (after passing it on).  Exiting as PID 1 makes the kernel
kill everything left in the PID namespace.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time


def main() -> int:
    with open(sys.argv[1]) as f:
        setup = json.load(f)
    daemon_argv = sys.argv[3:] if len(sys.argv) > 2 and sys.argv[2] == "--" else []
    if setup.get("pid1", True) and os.getpid() != 1:
        print("nsinit: not PID 1 of a new PID namespace", file=sys.stderr)
        return 2
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    # The mount namespace was made private by unshare; mounts below stay here.
    keep = setup.get("keep_run", [])
    staged = []
    for i, host_dir in enumerate(keep):
        stage = os.path.join(setup["stage"], str(i))
        os.makedirs(stage)
        subprocess.run(["mount", "--rbind", host_dir, stage], check=True)
        staged.append((stage, host_dir))
    subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=755", "tmpfs", "/run"], check=True)
    for stage, host_dir in staged:
        os.makedirs(host_dir, exist_ok=True)
        subprocess.run(["mount", "--move", stage, host_dir], check=True)
    for host_dir, upper, work in setup.get("overlay", []):
        opts = f"lowerdir={host_dir},upperdir={upper},workdir={work}"
        subprocess.run(["mount", "-t", "overlay", "overlay", "-o", opts, host_dir], check=True)

    term = False

    def on_term(signum: int, frame: object) -> None:
        nonlocal term
        term = True

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)

    daemon = subprocess.Popen(daemon_argv) if daemon_argv else None
    with open(setup["ready"], "w") as f:
        f.write(str(daemon.pid if daemon else 0))

    daemon_status: int | None = None
    term_sent_at: float | None = None
    while True:
        if term and term_sent_at is None:
            term_sent_at = time.monotonic()
            if daemon is not None and daemon_status is None:
                daemon.send_signal(signal.SIGTERM)
            else:
                return 0
        if term_sent_at is not None and time.monotonic() - term_sent_at > 10:
            return 1  # the daemon ignored SIGTERM; our exit kills it
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            pid, status = 0, 0
        if daemon is not None and pid == daemon.pid:
            daemon_status = os.waitstatus_to_exitcode(status)
            return 0 if term else 3
        if pid == 0:
            time.sleep(0.05)


if __name__ == "__main__":
    sys.exit(main())

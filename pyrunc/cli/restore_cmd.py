"""pyrunc restore: not supported (CRIU is not usable on this platform).

As for checkpoint, ``--help`` succeeds and restoring fails with one line.
"""

from __future__ import annotations

from pyrunc.cli.args import opt
from pyrunc.errors import PyruncError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

SYNOPSIS = "[command options] <container-id>"
OPTIONS = [
    opt("console_socket", "--console-socket", value=True, default="", help="path to an AF_UNIX socket which will receive a file descriptor referencing the master end of the console's pseudoterminal"),
    opt("image_path", "--image-path", value=True, default="", help="path to criu image files for restoring"),
    opt("work_path", "--work-path", value=True, default="", help="path for saving work files and logs"),
    opt("tcp_established", "--tcp-established", help="allow open tcp connections"),
    opt("ext_unix_sk", "--ext-unix-sk", help="allow external unix sockets"),
    opt("shell_job", "--shell-job", help="allow shell jobs"),
    opt("file_locks", "--file-locks", help="handle file locks, for safety"),
    opt("manage_cgroups_mode", "--manage-cgroups-mode", value=True, default="", help="cgroups mode: soft|full|strict|ignore (default: soft)"),
    opt("bundle", "--bundle", "-b", value=True, default="", help="path to the root of the bundle directory"),
    opt("detach", "--detach", "-d", help="detach from the container's process"),
    opt("pid_file", "--pid-file", value=True, default="", help="specify the file to write the process id to"),
    opt("no_subreaper", "--no-subreaper", help="disable the use of the subreaper used to reap reparented processes"),
    opt("no_pivot", "--no-pivot", help="do not use pivot root to jail process inside rootfs.  This should be used whenever the rootfs is on top of a ramdisk"),
    opt("empty_ns", "--empty-ns", value=True, multi=True, help="create a namespace, but don't restore its properties"),
    opt("auto_dedup", "--auto-dedup", help="enable auto deduplication of memory images"),
    opt("lazy_pages", "--lazy-pages", help="use userfaultfd to lazily restore memory pages"),
    opt("lsm_profile", "--lsm-profile", value=True, default="", help="Specify an LSM profile to be used during restore in the form of TYPE:NAME."),
    opt("lsm_mount_context", "--lsm-mount-context", value=True, default="", help="Specify an LSM mount context to be used during restore."),
]


def run(ctx: Any, values: dict[str, Any], args: list[str]) -> int:
    """Always fails."""
    raise PyruncError("restore is not supported by pyrunc (CRIU is not available)")

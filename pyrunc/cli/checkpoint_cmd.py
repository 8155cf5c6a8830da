"""pyrunc checkpoint: not supported (CRIU is not usable on this platform).

``--help`` prints runc's options and succeeds, as runc's does whether or not
CRIU is installed; checkpointing itself fails with one line.  (podman probes
``<runtime> checkpoint --help``; with runc and no usable CRIU it likewise
learns only at checkpoint time that it cannot.)
"""

from __future__ import annotations

from pyrunc.cli.args import opt
from pyrunc.errors import PyruncError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

SYNOPSIS = "[command options] <container-id>"
OPTIONS = [
    opt("image_path", "--image-path", value=True, default="", help="path for saving criu image files"),
    opt("work_path", "--work-path", value=True, default="", help="path for saving work files and logs"),
    opt("parent_path", "--parent-path", value=True, default="", help="path for previous criu image files in pre-dump"),
    opt("leave_running", "--leave-running", help="leave the process running after checkpointing"),
    opt("tcp_established", "--tcp-established", help="allow open tcp connections"),
    opt("ext_unix_sk", "--ext-unix-sk", help="allow external unix sockets"),
    opt("shell_job", "--shell-job", help="allow shell jobs"),
    opt("lazy_pages", "--lazy-pages", help="use userfaultfd to lazily restore memory pages"),
    opt("status_fd", "--status-fd", value=True, default="-1", help="criu writes \\0 to this FD once lazy-pages is ready (default: -1)"),
    opt("page_server", "--page-server", value=True, default="", help="ADDRESS:PORT of the page server"),
    opt("file_locks", "--file-locks", help="handle file locks, for safety"),
    opt("pre_dump", "--pre-dump", help="dump container's memory information only, leave the container running after this"),
    opt("manage_cgroups_mode", "--manage-cgroups-mode", value=True, default="", help="cgroups mode: soft|full|strict|ignore (default: soft)"),
    opt("empty_ns", "--empty-ns", value=True, multi=True, help="create a namespace, but don't restore its properties"),
    opt("auto_dedup", "--auto-dedup", help="enable auto deduplication of memory images"),
]


def run(ctx: Any, values: dict[str, Any], args: list[str]) -> int:
    """Always fails."""
    raise PyruncError("checkpoint is not supported by pyrunc (CRIU is not available)")

#!/usr/bin/env python3
"""The installed `pyrunc` command (setup.py writes it with `#!<python> -S`).

With -S the interpreter does not run `site` at start-up: no *.pth file is
read and no module such a file names is imported (on the test machines one
imports certifi, ~40 ms per call, more than runc's whole `run`).  So the
launcher puts on sys.path exactly the directories pyrunc was installed into,
found from the launcher's own location: setup.py fills _SITE_DIRS with the
paths from the scripts directory to purelib and platlib.  If pyrunc or its
compiled dependency (_cffi_backend) is not found there -- an unusual install
layout, a venv that borrows the system site-packages -- it runs `site` after
all and imports from the normal path, which is exactly what an ordinary
console script would have done.

Without -S (e.g. started as `python3 /path/to/bin/pyrunc`) `site` has already
run and the launcher only imports and calls pyrunc.cli.main.
"""

import sys

# Filled in by setup.py (build_scripts): paths relative to the scripts directory.
_SITE_DIRS: "tuple[str, ...]" = ()


def _add_install_dirs() -> bool:
    """Put the install's site dirs on sys.path; True if pyrunc is importable from them."""
    import os

    here = os.path.dirname(os.path.realpath(__file__))
    dirs = [os.path.normpath(os.path.join(here, d)) for d in _SITE_DIRS]
    # Directory listings, not importlib.machinery: importing that costs more
    # than the rest of the launcher (about 0.7 ms on the test machines).
    names: set[str] = set()
    for d in dirs:
        if d not in sys.path:
            sys.path.append(d)
        try:
            names.update(os.listdir(d))
        except OSError:
            pass
    return "pyrunc" in names and any(n.startswith("_cffi_backend.") for n in names)


if __name__ == "__main__":
    if sys.flags.no_site and not _add_install_dirs():
        import site
        site.main()
    from pyrunc.cli import main
    sys.exit(main())

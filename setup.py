"""Build pyrunc: the Python package, the cffi shim and the pyrunc-init program."""

import os
import subprocess

from setuptools import Distribution, find_packages, setup
from setuptools.command.build_ext import build_ext

# setuptools < 69 has no setuptools.command.build_scripts; ask for the class.
build_scripts = Distribution().get_command_class("build_scripts")

HERE = os.path.dirname(os.path.abspath(__file__))
INIT_SOURCES = sorted(
    os.path.join("csrc", "init", f)
    for f in os.listdir(os.path.join(HERE, "csrc", "init"))
    if f.endswith(".c")
)
INIT_CFLAGS = ["-O2", "-std=gnu11", "-Wall", "-Wextra", "-Werror", "-Icsrc",
               "-D_GNU_SOURCE", "-fno-strict-aliasing"]


def compile_init(out_dir):
    """Compile csrc/init/*.c into OUT_DIR/pyrunc-init (static when possible).

    A static binary maps no shared libraries, so the process that waits in the
    container between create and start stays small and never maps host files.
    """
    os.makedirs(out_dir, exist_ok=True)
    out = os.path.join(out_dir, "pyrunc-init")
    # Build beside the target and rename: a running pyrunc may be copying the
    # old binary into its memfd at this very moment.
    tmp = f"{out}.{os.getpid()}.tmp"
    cc = os.environ.get("CC", "cc")
    base = [cc, *INIT_CFLAGS, "-o", tmp, *INIT_SOURCES]
    extra = os.environ.get("PYRUNC_INIT_CFLAGS", "").split()
    for link in (["-static", "-lseccomp"], ["-lseccomp"]):
        if subprocess.call(base + extra + link, cwd=HERE) == 0:
            os.rename(tmp, out)
            return out
    raise SystemExit("building pyrunc-init failed")


class BuildExtWithInit(build_ext):
    """build_ext that also builds pyrunc-init next to the extension."""

    def run(self):
        super().run()
        target = os.path.join(HERE, "pyrunc", "libexec") if self.inplace else \
            os.path.join(self.build_lib, "pyrunc", "libexec")
        compile_init(target)


# The `pyrunc` command.  Not a console_scripts entry point: pip writes those
# with a bare `#!/path/to/python` line, so every call would run `site`, which
# imports whatever the *.pth files in site-packages import (on the test
# machines a .pth imports certifi: ~40 ms of the ~60 ms interpreter start).
# This launcher starts the interpreter with -S instead and puts only the
# directory pyrunc was installed into on sys.path; see docs/performance.md.
LAUNCHER_SOURCE = os.path.join("pyrunc", "cli", "launcher.py")


class BuildLauncher(build_scripts):
    """Install the launcher as `pyrunc`, with `#!<this interpreter> -S`.

    distutils would rewrite the first line to `#!python` (args dropped by
    pip), so the script is written here, verbatim.  The interpreter is the
    one running the build (sys.executable: the real binary, not a pyenv
    shim), which is the one pip installs for.  The paths from the scripts
    directory to purelib/platlib are filled in here and joined to the
    launcher's own location at run time (see pyrunc/cli/launcher.py).
    """

    def run(self):
        import sys
        import sysconfig
        self.mkpath(self.build_dir)
        out = os.path.join(self.build_dir, "pyrunc")
        with open(os.path.join(HERE, LAUNCHER_SOURCE)) as f:
            body = f.read()
        if body.startswith("#!"):
            body = body.split("\n", 1)[1]
        paths = sysconfig.get_paths()
        rel = tuple(dict.fromkeys(os.path.relpath(paths[k], paths["scripts"])
                                  for k in ("purelib", "platlib")))
        marker = '_SITE_DIRS: "tuple[str, ...]" = ()'
        if marker not in body:
            raise SystemExit(f"{LAUNCHER_SOURCE}: no _SITE_DIRS line to fill in")
        body = body.replace(marker, f"_SITE_DIRS = {rel!r}", 1)
        with open(out, "w") as f:
            f.write(f"#!{sys.executable} -S\n")
            f.write(body)
        os.chmod(out, 0o755)
        self.outfiles = [out]

    def get_outputs(self):
        return [os.path.join(self.build_dir, "pyrunc")]


setup(
    name="pyrunc",
    version="0.1.0",
    description="An OCI container runtime compatible with runc",
    license="Apache-2.0",
    packages=find_packages(include=["pyrunc", "pyrunc.*"]),
    package_data={"pyrunc": ["schemas/*.json", "libexec/*"]},
    python_requires=">=3.9",
    install_requires=["cffi>=1.15", "jsonschema>=4", "pyroute2>=0.7"],
    cffi_modules=["csrc/build_shim.py:ffibuilder"],
    cmdclass={"build_ext": BuildExtWithInit, "build_scripts": BuildLauncher},
    scripts=[LAUNCHER_SOURCE],
    zip_safe=False,
)

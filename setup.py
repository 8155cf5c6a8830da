"""Build pyrunc: the Python package, the cffi shim and the pyrunc-init program."""

import os
import subprocess

from setuptools import setup
from setuptools.command.build_ext import build_ext

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
    cc = os.environ.get("CC", "cc")
    base = [cc, *INIT_CFLAGS, "-o", out, *INIT_SOURCES]
    extra = os.environ.get("PYRUNC_INIT_CFLAGS", "").split()
    for link in (["-static", "-lseccomp"], ["-lseccomp"]):
        if subprocess.call(base + extra + link, cwd=HERE) == 0:
            return out
    raise SystemExit("building pyrunc-init failed")


class BuildExtWithInit(build_ext):
    """build_ext that also builds pyrunc-init next to the extension."""

    def run(self):
        super().run()
        target = os.path.join(HERE, "pyrunc", "libexec") if self.inplace else \
            os.path.join(self.build_lib, "pyrunc", "libexec")
        compile_init(target)


setup(
    name="pyrunc",
    version="0.1.0",
    description="An OCI container runtime compatible with runc",
    license="Apache-2.0",
    packages=["pyrunc", "pyrunc.cli", "pyrunc.spec", "pyrunc.plan", "pyrunc.linux",
              "pyrunc.state"],
    package_data={"pyrunc": ["schemas/*.json", "libexec/*"]},
    python_requires=">=3.9",
    setup_requires=["cffi>=1.15"],
    install_requires=["cffi>=1.15", "jsonschema>=4"],
    cffi_modules=["csrc/build_shim.py:ffibuilder"],
    cmdclass={"build_ext": BuildExtWithInit},
    entry_points={"console_scripts": ["pyrunc=pyrunc.cli:main"]},
    zip_safe=False,
)

"""cffi (out-of-line, API mode) build script for pyrunc._shim."""

import os

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))

ffibuilder = FFI()
with open(os.path.join(HERE, "shim.h")) as header:
    # Only the declarations between the CDEF markers are given to cffi.
    text = header.read()
    ffibuilder.cdef(text.split("/* CDEF BEGIN */")[1].split("/* CDEF END */")[0])

ffibuilder.set_source(
    "pyrunc._shim",
    '#include "shim.h"',
    sources=[os.path.relpath(os.path.join(HERE, "shim.c"))],
    include_dirs=[os.path.relpath(HERE)],
    extra_compile_args=["-Wall", "-Wextra", "-Werror", "-D_GNU_SOURCE"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)

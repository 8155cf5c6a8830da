"""Signal names and numbers as runc accepts them (pure)."""

from __future__ import annotations

from pyrunc.errors import UsageError

# Linux x86/arm numbering (the generic table); SIGRTMIN+n is accepted too.
SIGNALS = {
    "HUP": 1, "INT": 2, "QUIT": 3, "ILL": 4, "TRAP": 5, "ABRT": 6, "IOT": 6, "BUS": 7,
    "FPE": 8, "KILL": 9, "USR1": 10, "SEGV": 11, "USR2": 12, "PIPE": 13, "ALRM": 14,
    "TERM": 15, "STKFLT": 16, "CHLD": 17, "CLD": 17, "CONT": 18, "STOP": 19, "TSTP": 20,
    "TTIN": 21, "TTOU": 22, "URG": 23, "XCPU": 24, "XFSZ": 25, "VTALRM": 26, "PROF": 27,
    "WINCH": 28, "IO": 29, "POLL": 29, "PWR": 30, "SYS": 31,
}
SIGRTMIN = 34
SIGRTMAX = 64


def parse_signal(text: str) -> int:
    """A signal given as a number, a name, or a name with the SIG prefix."""
    raw = text.strip()
    if not raw.isascii():
        raise UsageError(f"unknown signal {text!r}")
    if raw.isdigit():
        # Length first: int() refuses huge digit strings with a ValueError.
        number = int(raw) if len(raw) <= 20 else 0
        # 0 as in runc: the kernel only checks that the process exists.
        if 0 <= number <= SIGRTMAX:
            return number
        raise UsageError(f"invalid signal: {text}")
    name = raw.upper()
    if name.startswith("SIG"):
        name = name[3:]
    if name in SIGNALS:
        return SIGNALS[name]
    for base, sign in (("RTMIN+", 1), ("RTMAX-", -1)):
        if name.startswith(base) and name[len(base):].isdigit() and len(name) < 16:
            number = (SIGRTMIN if sign > 0 else SIGRTMAX) + sign * int(name[len(base):])
            if SIGRTMIN <= number <= SIGRTMAX:
                return number
    if name == "RTMIN":
        return SIGRTMIN
    if name == "RTMAX":
        return SIGRTMAX
    raise UsageError(f"unknown signal {text!r}")

"""The systemd cgroup driver's decisions (pure): unit name, slice, properties.

With ``--systemd-cgroup`` a container's cgroup is a transient systemd unit
(a scope, or a slice when asked for one) started through systemd's D-Bus API.
This module decides everything about it without touching the system:

* :func:`parse_cgroups_path`: ``linux.cgroupsPath`` of the form
  ``slice:prefix:name`` -> a :class:`UnitTarget` (unit name, parent slice,
  cgroup path below the hierarchy root), with runc's defaults and wording;
* :func:`expand_slice`: ``a-b.slice`` -> ``/a.slice/a-b.slice``, as systemd
  nests slices;
* :func:`start_properties` and :func:`resource_properties`: the unit
  properties runc sets, from ``linux.resources`` (by cgroup version and
  systemd version), the device rules and ``org.systemd.property.*``
  annotations (GVariant text, :func:`parse_gvariant`).

A property is ``(Name, (D-Bus signature, value))``, e.g.
``("MemoryMax", ("t", 1048576))``.  What systemd does not cover is written to
the unit's cgroup files afterwards, as the cgroupfs driver does.
"""

from __future__ import annotations

from pyrunc.errors import ConfigError
from pyrunc.plan.cgroups import resources_section
from pyrunc.plan.record import FrozenRecord

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Any, TypeAlias

    from pyrunc.plan.cgroups import DeviceRule

    Property: TypeAlias = "tuple[str, tuple[str, Any]]"

#: The unit-name prefix for an empty cgroupsPath (runc uses "runc", runsc "runsc").
DEFAULT_PREFIX = "pyrunc"
SYSTEM_SLICE = "system.slice"
USER_SLICE = "user.slice"
ANNOTATION_PREFIX = "org.systemd.property."
UINT64_MAX = (1 << 64) - 1
DEFAULT_CPU_PERIOD = 100000
# systemd keeps a CPU quota as a whole percentage: round up to 10 ms per second.
_QUOTA_STEP = 10000

# systemd's unit_name_is_valid(): these characters, at most 255 of them.
_UNIT_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:-_.\\@")
_UNIT_NAME_MAX = 255


class UnitTarget(FrozenRecord):
    """Where a container's unit goes.

    ``unit``: the unit name (``prefix-name.scope``, or ``name`` when it is
    a ``.slice``).  ``slice``: the parent slice unit.  ``cgroup``: the unit's
    cgroup below the hierarchy root (or below the user manager's own cgroup
    when ``user``), e.g. ``/system.slice/pyrunc-abc.scope``.
    """

    __slots__ = ("unit", "slice", "cgroup", "user")

    def __init__(self, unit: str, slice: str, cgroup: str, user: bool = False) -> None:
        self.unit = unit
        self.slice = slice
        self.cgroup = cgroup
        self.user = user

    @property
    def is_slice(self) -> bool:
        """Whether the unit is a slice (runc's "create a slice" case)."""
        return self.unit.endswith(".slice")


def expand_slice(slice_name: str) -> str:
    """The cgroup path of slice unit ``slice_name`` as systemd nests it.

    ``a-b-c.slice`` -> ``/a.slice/a-b.slice/a-b-c.slice``; ``-.slice`` (the
    root slice) -> ``/``.  Raises ConfigError with runc's wording for a name
    that is not a slice, holds a ``/`` or an empty component.
    """
    suffix = ".slice"
    bad = ConfigError(f"linux.cgroupsPath: invalid slice name: {slice_name}")
    if len(slice_name) <= len(suffix) - 1 or not slice_name.endswith(suffix) or "/" in slice_name:
        raise bad
    stem = slice_name[:-len(suffix)]
    if stem == "-":
        return "/"
    if not stem:
        raise bad
    path, prefix = "", ""
    for component in stem.split("-"):
        if not component:
            raise bad
        path += "/" + prefix + component + suffix
        prefix += component + "-"
    return path


def _check_unit_name(unit: str) -> None:
    if len(unit) > _UNIT_NAME_MAX or not set(unit) <= _UNIT_CHARS or unit.startswith("."):
        raise ConfigError(f"linux.cgroupsPath: invalid systemd unit name {unit!r}")


def parse_cgroups_path(cgroups_path: str | None, container_id: str, rootless: bool = False) -> UnitTarget:
    """``linux.cgroupsPath`` for the systemd driver -> :class:`UnitTarget`.

    Empty: ``:pyrunc:<container id>``.  An empty slice is ``system.slice``
    (``user.slice`` for a rootless container, under the user's manager);
    ``-`` or ``-.slice`` is the root slice.  A path not of the form
    ``slice:prefix:name`` is refused with runc's message.
    """
    path = cgroups_path or ""
    if not path:
        slice_name, prefix, name = "", DEFAULT_PREFIX, container_id
    else:
        parts = path.split(":")
        if len(parts) != 3:
            raise ConfigError('linux.cgroupsPath: expected cgroupsPath to be of format "slice:prefix:name" '
                              f'for systemd cgroups, got "{path}" instead')
        slice_name, prefix, name = parts
    if not slice_name:
        slice_name = USER_SLICE if rootless else SYSTEM_SLICE
    elif slice_name == "-":
        slice_name = "-.slice"
    if not name:
        raise ConfigError(f'linux.cgroupsPath: no unit name in "{path}" (expected "slice:prefix:name")')
    unit = name if name.endswith(".slice") else f"{prefix}-{name}.scope"
    _check_unit_name(unit)
    parent = expand_slice(slice_name)
    if unit.endswith(".slice"):
        # A slice unit's own path comes from its name alone: systemd nests
        # it by its dashes, whatever parent it Wants.
        cgroup = expand_slice(unit)
    else:
        cgroup = parent.rstrip("/") + "/" + unit
    return UnitTarget(unit, slice_name, cgroup, user=rootless)


# ---------------------------------------------------------------- conversions


def range_to_bits(text: str, where: str) -> bytes:
    """A cpuset list (``0-3,7``) -> systemd's bitmask bytes (CPU 0 = bit 0 of byte 0)."""
    bits = 0
    for raw in text.split(","):
        part = raw.strip()
        if not part:
            continue
        lo_s, sep, hi_s = part.partition("-")
        try:
            lo = int(lo_s)
            hi = int(hi_s) if sep else lo
        except ValueError:
            raise ConfigError(f"{where}: invalid cpuset list {text!r}") from None
        if lo < 0 or hi < lo or hi > 65535:
            raise ConfigError(f"{where}: invalid cpuset range {part!r}")
        for bit in range(lo, hi + 1):
            bits |= 1 << bit
    if bits == 0:
        raise ConfigError(f"{where}: empty cpuset list {text!r}")
    return bits.to_bytes((bits.bit_length() + 7) // 8, "little")


def cpu_quota_properties(quota: int, period: int, sd_version: int) -> list[Property]:
    """CPUQuotaPeriodUSec (systemd >= 242) and CPUQuotaPerSecUSec for quota/period (0 = unset)."""
    props: list[Property] = []
    if period != 0 and sd_version >= 242:
        props.append(("CPUQuotaPeriodUSec", ("t", period)))
    if quota != 0 or period != 0:
        per_sec = UINT64_MAX  # USEC_INFINITY: no quota
        if quota > 0:
            per_sec = quota * 1000000 // (period or DEFAULT_CPU_PERIOD)
            if per_sec % _QUOTA_STEP:
                per_sec = (per_sec // _QUOTA_STEP + 1) * _QUOTA_STEP
        props.append(("CPUQuotaPerSecUSec", ("t", per_sec)))
    return props


def _cpuset_properties(cpus: str, mems: str, sd_version: int, where: str) -> list[Property]:
    props: list[Property] = []
    if sd_version < 244:
        return props  # too old for AllowedCPUs: the cgroup files still get the values
    if cpus:
        props.append(("AllowedCPUs", ("ay", range_to_bits(cpus, f"{where}.cpus"))))
    if mems:
        props.append(("AllowedMemoryNodes", ("ay", range_to_bits(mems, f"{where}.mems"))))
    return props


def _u64(value: int) -> int:
    """A limit for a ``t`` property: negative means infinity."""
    return UINT64_MAX if value < 0 else value


def _int_field(section: Mapping[str, Any], key: str, where: str) -> int:
    value = section.get(key)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{where}.{key}: expected an integer, got {value!r}")
    return value


def _unified_properties(unified: Mapping[str, Any], sd_version: int) -> list[Property]:
    """``linux.resources.unified`` entries systemd has a property for (the rest go to files)."""
    props: list[Property] = []
    memory = {"memory.high": "MemoryHigh", "memory.low": "MemoryLow", "memory.min": "MemoryMin",
              "memory.max": "MemoryMax", "memory.swap.max": "MemorySwapMax", "pids.max": "TasksMax"}
    for key in sorted(unified):
        where = f"linux.resources.unified.{key}"
        value = str(unified[key]).strip()
        try:
            if key == "cpu.max":
                fields = value.split()
                if not 1 <= len(fields) <= 2:
                    raise ConfigError(f"{where}: invalid value {value!r}")
                quota = 0 if fields[0] == "max" else int(fields[0])
                period = int(fields[1]) if len(fields) == 2 else DEFAULT_CPU_PERIOD
                props.extend(cpu_quota_properties(quota, period, sd_version))
            elif key == "cpu.weight":
                props.append(("CPUWeight", ("t", int(value))))
            elif key in ("cpuset.cpus", "cpuset.mems"):
                if sd_version >= 244:
                    name = "AllowedCPUs" if key == "cpuset.cpus" else "AllowedMemoryNodes"
                    props.append((name, ("ay", range_to_bits(value, where))))
            elif key in memory:
                props.append((memory[key], ("t", UINT64_MAX if value == "max" else int(value))))
        except ValueError:
            raise ConfigError(f"{where}: invalid value {value!r}") from None
    return props


# --------------------------------------------------------------------- devices


def device_properties(rules: Sequence[DeviceRule]) -> tuple[list[Property], list[str]]:
    """DevicePolicy + DeviceAllow for the ordered device ``rules``, plus warnings.

    The rules are replayed as the devices cgroup would (an ``a`` rule resets
    to allow-all or deny-all).  An allow-list becomes DevicePolicy=strict with
    one DeviceAllow entry per rule; allow-all becomes DevicePolicy=auto with
    no entries.  systemd cannot express a deny-list or ``*:N`` rules: those
    leave a stricter set, with a warning, and pyrunc's own eBPF filter on
    the cgroup enforces the exact rules either way.
    """
    warnings: list[str] = []
    allow_all = False
    allowed: dict[tuple[str, int, int], str] = {}
    denied: dict[tuple[str, int, int], str] = {}
    for r in rules:
        if r.type == "a":
            allow_all = r.allow
            allowed.clear()
            denied.clear()
            continue
        key = (r.type, r.major, r.minor)
        grant, revoke = (allowed, denied) if r.allow else (denied, allowed)
        grant[key] = "".join(ch for ch in "rwm" if ch in grant.get(key, "") + r.access)
        left = "".join(ch for ch in revoke.get(key, "") if ch not in r.access)
        if left:
            revoke[key] = left
        else:
            revoke.pop(key, None)
    if allow_all:
        if not denied:
            return [("DevicePolicy", ("s", "auto")), ("DeviceAllow", ("a(ss)", []))], warnings
        warnings.append("systemd doesn't support blacklist device rules -- applying temporary deny-all rule")
        return [("DevicePolicy", ("s", "strict")), ("DeviceAllow", ("a(ss)", []))], warnings
    entries: list[tuple[str, str]] = []
    for (dtype, major, minor), access in allowed.items():
        group = "char-" if dtype == "c" else "block-"
        if major < 0:
            if minor >= 0:
                warnings.append(f"systemd doesn't support '*:n' device rules -- temporarily ignoring rule: "
                                f"{dtype} *:{minor} {access}")
                continue
            path = group + "*"
        elif minor < 0:
            path = f"{group}{major}"
        else:
            path = f"/dev/{'char' if dtype == 'c' else 'block'}/{major}:{minor}"
        entries.append((path, access))
    return [("DevicePolicy", ("s", "strict")), ("DeviceAllow", ("a(ss)", entries))], warnings


# ------------------------------------------------------------------ resources


def resource_properties(resources: Mapping[str, Any], version: str, sd_version: int,
                        devices: Sequence[DeviceRule] | None = None) -> tuple[list[Property], list[str]]:
    """Unit properties for ``linux.resources`` on cgroup ``version`` ("v1"/"v2").

    The same set runc translates (see docs/systemd.md of runc): memory, CPU
    weight or shares, quota and period, cpusets, tasks, (v1) block I/O
    weight, (v2) the ``unified`` keys systemd knows; and the device rules
    when given.  Returns (properties, warnings).
    """
    from pyrunc.plan.cgroups import cpu_shares_to_weight, memory_swap_to_v2

    props: list[Property] = []
    warnings: list[str] = []
    if devices is not None:
        dprops, warnings = device_properties(devices)
        props.extend(dprops)
    mem = resources_section(resources, "memory")
    mwhere = "linux.resources.memory"
    limit = _int_field(mem, "limit", mwhere)
    cpu = resources_section(resources, "cpu")
    cwhere = "linux.resources.cpu"
    shares = _int_field(cpu, "shares", cwhere)
    pids = resources_section(resources, "pids")
    pids_limit = _int_field(pids, "limit", "linux.resources.pids")
    if version == "v2":
        if limit:
            props.append(("MemoryMax", ("t", _u64(limit))))
        reservation = _int_field(mem, "reservation", mwhere)
        if reservation:
            props.append(("MemoryLow", ("t", _u64(reservation))))
        swap = memory_swap_to_v2(_int_field(mem, "swap", mwhere), limit)
        if swap:
            props.append(("MemorySwapMax", ("t", _u64(swap))))
        if shares:
            props.append(("CPUWeight", ("t", cpu_shares_to_weight(shares))))
    else:
        if limit:
            props.append(("MemoryLimit", ("t", _u64(limit))))
        if shares:
            props.append(("CPUShares", ("t", shares)))
    props.extend(cpu_quota_properties(_int_field(cpu, "quota", cwhere), _int_field(cpu, "period", cwhere),
                                      sd_version))
    if version != "v2":
        weight = _int_field(resources_section(resources, "blockIO"), "weight", "linux.resources.blockIO")
        if weight:
            props.append(("BlockIOWeight", ("t", weight)))
    if pids_limit > 0 or pids_limit < 0:
        props.append(("TasksMax", ("t", _u64(pids_limit))))
    props.extend(_cpuset_properties(str(cpu.get("cpus") or ""), str(cpu.get("mems") or ""), sd_version, cwhere))
    unified = resources.get("unified") or {}
    if version == "v2" and isinstance(unified, dict):
        props.extend(_unified_properties(unified, sd_version))
    return props, warnings


def start_properties(target: UnitTarget, container_id: str, pid: int, resources: Mapping[str, Any],
                     version: str, sd_version: int, devices: Sequence[DeviceRule] | None = None,
                     annotations: Mapping[str, str] | None = None) -> tuple[list[Property], list[str]]:
    """Every property of StartTransientUnit for the container's unit.

    As runc: a description, the parent (Slice= for a scope, Wants= for a
    slice), the init's pid (scopes; a slice gets it through cgroup.procs),
    Delegate=yes for a scope, accounting on for every controller,
    DefaultDependencies=no, the resource properties, then the
    ``org.systemd.property.*`` annotations, which may override any of them.
    """
    props: list[Property] = [("Description", ("s", f"pyrunc container {container_id}"))]
    if target.is_slice:
        props.append(("Wants", ("as", [target.slice])))
    else:
        props.append(("Slice", ("s", target.slice)))
        props.append(("PIDs", ("au", [pid])))
        props.append(("Delegate", ("b", True)))
    props.extend([
        ("MemoryAccounting", ("b", True)),
        ("CPUAccounting", ("b", True)),
        ("IOAccounting" if version == "v2" else "BlockIOAccounting", ("b", True)),
        ("TasksAccounting", ("b", True)),
        ("DefaultDependencies", ("b", False)),
    ])
    rprops, warnings = resource_properties(resources, version, sd_version, devices)
    props.extend(rprops)
    props.extend(annotation_properties(annotations or {}))
    return props, warnings


# ----------------------------------------------------------------- annotations


def _check_property_name(name: str, key: str) -> None:
    if len(name) < 3:
        raise ConfigError(f"annotations: annotation {key} name incorrect: too short")
    if not name.isascii() or not name.isalpha():
        raise ConfigError(f"annotations: annotation {key} name incorrect: contains non-alphabetic character")


_NUMERIC = {"y": 1 << 8, "n": 1 << 15, "q": 1 << 16, "i": 1 << 31, "u": 1 << 32, "x": 1 << 63, "t": 1 << 64}


def _sec_to_usec(sig: str, value: Any) -> tuple[str, Any]:
    if sig in _NUMERIC:
        return "t", int(value) * 1000000
    if sig == "d":
        return "t", int(float(value) * 1000000)
    raise ValueError("not a number")


def annotation_properties(annotations: Mapping[str, str]) -> list[Property]:
    """``org.systemd.property.<Name>`` annotations -> properties, in key order.

    The value is GVariant text (``uint64 123``, ``'inactive-or-failed'``,
    ``true``, ``['a', 'b']``); a ``…Sec`` name whose value is a number is
    sent as ``…USec`` in microseconds, as runc does.
    """
    props: list[Property] = []
    for key in sorted(annotations):
        if not key.startswith(ANNOTATION_PREFIX):
            continue
        name = key[len(ANNOTATION_PREFIX):]
        value = annotations[key]
        _check_property_name(name, key)
        try:
            sig, parsed = parse_gvariant(str(value))
            if name.endswith("Sec") and len(name) > 3 and "a" <= name[-4] <= "z":
                name = name[:-3] + "USec"
                sig, parsed = _sec_to_usec(sig, parsed)
        except ValueError as e:
            raise ConfigError(f"annotations: annotation {key}={value} value parse error: {e}") from None
        props.append((name, (sig, parsed)))
    return props


_TYPE_WORDS = {"boolean": "b", "byte": "y", "int16": "n", "uint16": "q", "int32": "i", "uint32": "u",
               "int64": "x", "uint64": "t", "double": "d", "string": "s", "objectpath": "o", "signature": "g"}


class _GVariantParser:
    """A parser for the GVariant text subset unit properties use.

    Scalars (numbers, booleans, strings), optional type words (``uint64 5``),
    arrays of one type (``[1, 2]``, ``@as []``) and tuples (``('a', 'b')``).
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def _skip(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def _peek(self) -> str:
        self._skip()
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def _word(self) -> str:
        self._skip()
        start = self.pos
        while self.pos < len(self.text) and (self.text[self.pos].isalnum() or self.text[self.pos] in "_-+.@"):
            self.pos += 1
        return self.text[start:self.pos]

    def done(self) -> bool:
        return self._peek() == ""

    def value(self, want: str | None = None) -> tuple[str, Any]:
        ch = self._peek()
        if ch == "@":
            self.pos += 1
            start = self.pos
            while self.pos < len(self.text) and not self.text[self.pos].isspace():
                self.pos += 1
            return self.value(self.text[start:self.pos])
        if ch in ("'", '"'):
            if want not in (None, "s", "o", "g"):
                raise ValueError(f"a string is not of type {want}")
            return "s" if want is None else want, self._string(ch)
        if ch == "[":
            return self._array(want)
        if ch == "(":
            return self._tuple()
        if ch == "":
            raise ValueError("unexpected end of input")
        save = self.pos
        word = self._word()
        if word in _TYPE_WORDS:
            return self.value(_TYPE_WORDS[word])
        self.pos = save
        return self._scalar(self._word(), want)

    def _string(self, quote: str) -> str:
        self.pos += 1
        out = []
        while self.pos < len(self.text):
            ch = self.text[self.pos]
            self.pos += 1
            if ch == "\\" and self.pos < len(self.text):
                esc = self.text[self.pos]
                self.pos += 1
                out.append({"n": "\n", "t": "\t", "r": "\r", "0": "\0"}.get(esc, esc))
            elif ch == quote:
                return "".join(out)
            else:
                out.append(ch)
        raise ValueError("unterminated string")

    def _scalar(self, word: str, want: str | None) -> tuple[str, Any]:
        if not word:
            raise ValueError(f"unexpected character {self._peek()!r}")
        if word in ("true", "false"):
            if want not in (None, "b"):
                raise ValueError(f"{word} is not of type {want}")
            return "b", word == "true"
        if want == "d" or (want is None and any(c in word for c in ".eE") and not word.startswith("0x")):
            try:
                return "d", float(word)
            except ValueError:
                raise ValueError(f"invalid number {word!r}") from None
        try:
            number = int(word, 0)
        except ValueError:
            raise ValueError(f"invalid number {word!r}") from None
        sig = want or "i"
        if sig not in _NUMERIC:
            raise ValueError(f"{word} is not of type {sig}")
        top = _NUMERIC[sig]
        low = 0 if sig in "yqut" else -top
        high = top - 1
        if not low <= number <= high:
            raise ValueError(f"{word} out of range for type {sig}")
        return sig, number

    def _array(self, want: str | None) -> tuple[str, Any]:
        self.pos += 1
        elem = want[1:] if want and want.startswith("a") else None
        items: list[Any] = []
        sigs: set[str] = set()
        while True:
            if self._peek() == "]":
                self.pos += 1
                break
            if items:
                if self._peek() != ",":
                    raise ValueError("expected ',' in array")
                self.pos += 1
            sig, item = self.value(elem)
            sigs.add(sig)
            items.append(item)
            # The first element's type is the array's (GVariant's rule).
            elem = elem or sig
        if len(sigs) > 1:
            raise ValueError("array elements of different types")
        elem = elem or (sigs.pop() if sigs else None)
        if elem is None:
            raise ValueError("cannot infer the type of an empty array")
        return "a" + elem, items

    def _tuple(self) -> tuple[str, Any]:
        self.pos += 1
        sigs: list[str] = []
        items: list[Any] = []
        while True:
            if self._peek() == ")":
                self.pos += 1
                break
            if items:
                if self._peek() != ",":
                    raise ValueError("expected ',' in tuple")
                self.pos += 1
                if self._peek() == ")":
                    self.pos += 1
                    break
            sig, item = self.value()
            sigs.append(sig)
            items.append(item)
        return "(" + "".join(sigs) + ")", tuple(items)


def parse_gvariant(text: str) -> tuple[str, Any]:
    """GVariant text -> (D-Bus signature, Python value); ValueError when not parseable."""
    parser = _GVariantParser(text)
    sig, value = parser.value()
    if not parser.done():
        raise ValueError(f"unexpected text after the value: {text[parser.pos:]!r}")
    return sig, value

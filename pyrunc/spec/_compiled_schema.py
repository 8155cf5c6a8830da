# GENERATED FILE -- DO NOT EDIT.
# Produced by pyrunc.spec.schemac from schemas/*.json; after changing a schema,
# regenerate it with:  python3 -m pyrunc.spec.schemac
#
# Every check is written "if <failure>: return False" on purpose (flat, uniform,
# no generator overhead); the two ruff style rules that would fold them are off.
# ruff: noqa: SIM102, SIM103
"""Validators compiled ahead of time from pyrunc's JSON Schemas.

Each public function returns True exactly when jsonschema (draft 2020-12) would
accept the document.  They say nothing about why a document is invalid: for that,
pyrunc.spec.validate asks jsonschema.
"""


from pyrunc.spec.simplepattern import search as _search

__all__ = [
    "is_valid_config",
    "is_valid_features",
    "is_valid_state",
]


_P0 = (('R', False, 1, False), ('L', False, 1, False), ('I', False, 1, False), ('M', False, 1, False), ('I', False, 1, False), ('T', False, 1, False), ('_', False, 1, False), ('ABCDEFGHIJKLMNOPQRSTUVWXYZ', False, 1, True))
_E1 = frozenset({"SCHED_BATCH", "SCHED_DEADLINE", "SCHED_FIFO", "SCHED_IDLE", "SCHED_ISO", "SCHED_OTHER", "SCHED_RR"})
_E2 = frozenset({"SCHED_FLAG_DL_OVERRUN", "SCHED_FLAG_KEEP_PARAMS", "SCHED_FLAG_KEEP_POLICY", "SCHED_FLAG_RECLAIM", "SCHED_FLAG_RESET_ON_FORK", "SCHED_FLAG_UTIL_CLAMP_MAX", "SCHED_FLAG_UTIL_CLAMP_MIN"})
_E3 = frozenset({"IOPRIO_CLASS_BE", "IOPRIO_CLASS_IDLE", "IOPRIO_CLASS_RT"})
_P4 = ((' ,-0123456789', False, 0, True),)
_E5 = frozenset({"cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"})
_E6 = frozenset({"b", "c", "p", "u"})
_P7 = (('123456789', False, 1, False), ('0123456789', False, 0, True), ('GKM', False, 1, False), ('B', False, 1, False))
_P8 = (('M', False, 1, False), ('B', False, 1, False), (':', False, 1, False), ('\n', True, 0, True))
_E9 = frozenset({"SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"})
_E10 = frozenset({"SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM", "SCMP_ARCH_LOONGARCH64", "SCMP_ARCH_M68K", "SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64", "SCMP_ARCH_MIPS64N32", "SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PARISC", "SCMP_ARCH_PARISC64", "SCMP_ARCH_PPC", "SCMP_ARCH_PPC64", "SCMP_ARCH_PPC64LE", "SCMP_ARCH_RISCV64", "SCMP_ARCH_S390", "SCMP_ARCH_S390X", "SCMP_ARCH_SH", "SCMP_ARCH_SHEB", "SCMP_ARCH_X32", "SCMP_ARCH_X86", "SCMP_ARCH_X86_64"})
_E11 = frozenset({"SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"})
_E12 = frozenset({"SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT", "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"})
_E13 = frozenset({"private", "rprivate", "rshared", "rslave", "runbindable", "shared", "slave", "unbindable"})
_E14 = frozenset({"LINUX", "LINUX32"})
_E15 = frozenset({"MPOL_BIND", "MPOL_DEFAULT", "MPOL_INTERLEAVE", "MPOL_LOCAL", "MPOL_PREFERRED", "MPOL_PREFERRED_MANY", "MPOL_WEIGHTED_INTERLEAVE"})
_E16 = frozenset({"MPOL_F_NUMA_BALANCING", "MPOL_F_RELATIVE_NODES", "MPOL_F_STATIC_NODES"})
_E17 = frozenset({"created", "creating", "running", "stopped"})
_P18 = (('C', False, 1, False), ('A', False, 1, False), ('P', False, 1, False), ('_', False, 1, False), ('ABCDEFGHIJKLMNOPQRSTUVWXYZ_', False, 1, True))


def _v0(x: object) -> bool:
    # https://schemas.pyrunc.invalid/config-schema.json#/properties/root
    if not isinstance(x, dict):
        return False
    if "path" not in x:
        return False
    if not isinstance(x["path"], str):
        return False
    if "readonly" in x and not isinstance(x["readonly"], bool):
        return False
    return True


def _v1(x: object) -> bool:
    # https://schemas.pyrunc.invalid/defs.json#/$defs/strings
    if not isinstance(x, list):
        return False
    for v in x:
        if not isinstance(v, str):
            return False
    return True


def _v2(x: object) -> bool:
    # https://schemas.pyrunc.invalid/defs.json#/$defs/uint32
    if not ((isinstance(x, int) and not isinstance(x, bool)) or (isinstance(x, float) and x.is_integer())):
        return False
    if x < 0:
        return False
    if x > 4294967295:
        return False
    return True


def _v3(x: object) -> bool:
    # https://schemas.pyrunc.invalid/defs.json#/$defs/idMapping
    if not isinstance(x, dict):
        return False
    if "containerID" not in x or "hostID" not in x or "size" not in x:
        return False
    if not _v2(x["containerID"]):
        return False
    if not _v2(x["hostID"]):
        return False
    if not _v2(x["size"]):
        return False
    return True


def _v4(x: object) -> bool:
    # https://schemas.pyrunc.invalid/defs.json#/$defs/idMappings
    if not isinstance(x, list):
        return False
    for v in x:
        if not _v3(v):
            return False
    return True


def _v5(x: object) -> bool:
    # https://schemas.pyrunc.invalid/defs.json#/$defs/mount
    if not isinstance(x, dict):
        return False
    if "destination" not in x:
        return False
    if not isinstance(x["destination"], str):
        return False
    if "source" in x and not isinstance(x["source"], str):
        return False
    if "type" in x and not isinstance(x["type"], str):
        return False
    if "options" in x and not _v1(x["options"]):
        return False
    if "uidMappings" in x and not _v4(x["uidMappings"]):
        return False
    if "gidMappings" in x and not _v4(x["gidMappings"]):
        return False
    return True


def _v6(x: object) -> bool:
    # https://schemas.pyrunc.invalid/config-schema.json#/properties/mounts
    if not isinstance(x, list):
        return False
    for v in x:
        if not _v5(v):
            return False
    return True


def _v7(x: object) -> bool:
    # https://schemas.pyrunc.invalid/defs.json#/$defs/uint64
    if not ((isinstance(x, int) and not isinstance(x, bool)) or (isinstance(x, float) and x.is_integer())):
        return False
    if x < 0:
        return False
    if x > 18446744073709551615:
        return False
    return True


def _v8(x: object) -> bool:
    # https://schemas.pyrunc.invalid/config-schema.json#/properties/process/properties/consoleSize
    if not isinstance(x, dict):
        return False
    if "height" not in x or "width" not in x:
        return False
    if not _v7(x["height"]):
        return False
    if not _v7(x["width"]):
        return False
    return True


def _v9(x: object) -> bool:
    # https://schemas.pyrunc.invalid/config-schema.json#/properties/process/properties/args
    if not isinstance(x, list):
        return False
    if len(x) < 1:
        return False
    for v in x:
        if not isinstance(v, str):
            return False
    return True


def _v10(x: object) -> bool:
    # https://schemas.pyrunc.invalid/config-schema.json#/properties/process/properties/user/properties/additionalGids
    if not isinstance(x, list):
        return False
    for v in x:
        if not _v2(v):
            return False
    return True


def _v11(x: object) -> bool:
    # https://schemas.pyrunc.invalid/config-schema.json#/properties/process/properties/user
    if not isinstance(x, dict):
        return False
    if "uid" in x and not _v2(x["uid"]):
        return False
    if "gid" in x and not _v2(x["gid"]):
        return False
    if "umask" in x and not _v2(x["umask"]):
        return False
    if "additionalGids" in x and not _v10(x["additionalGids"]):
        return False
    if "username" in x and not isinstance(x["username"], str):
        return False
    return True


def _v12(x: object) -> bool:
    # https://schemas.pyrunc.invalid/config-schema.json#/properties/process/properties/capabilities
    if not isinstance(x, dict):
        return False
    if "bounding" in x and not _v1(x["bounding"]):
        return False
    if "effective" in x and not _v1(x["effective"]):
        return False
    if "inheritable" in x and not _v1(x["inheritable"]):
        return False
    if "permitted" in x and not _v1(x["permitted"]):
        return False
    if "ambient" in x and not _v1(x["ambient"]):
        return False
    return True


def _v13(x: object) -> bool:
    # https://schemas.pyrunc.invalid/config-schema.json#/properties/process/properties/rlimits/items/properties/type
    if not isinstance(x, str):
        return False
    if not _search(_P0, x):
        return False
    return True


def _v14(x: object) -> bool:
    # https://schemas.pyrunc.invalid/config-schema.json#/properties/process/properties/rlimits/items
    if not isinstance(x, dict):
        return False
    if "type" not in x or "soft" not in x or "hard" not in x:
        return False
    if not _v13(x["type"]):
        return False
    if not _v7(x["soft"]):
        return False
    if not _v7(x["hard"]):
        return False
    return True


def _v15(x: object) -> bool:
    # https://schemas.pyrunc.invalid/config-schema.json#/properties/process/properties/rlimits
    if not isinstance(x, list):
        return False
    for v in x:
        if not _v14(v):
            return False
    return True


def _v16(x: object) -> bool:
    # https://schemas.pyrunc.invalid/config-schema.json#/properties/process/properties/oomScoreAdj
    if not ((isinstance(x, int) and not isinstance(x, bool)) or (isinstance(x, float) and x.is_integer())):
        return False
    return True


def _v17(x: object) -> bool:
    # https://schemas.pyrunc.invalid/defs-linux.json#/$defs/schedPolicy
    if not isinstance(x, str):
        return False
    if x not in _E1:
        return False
    return True


def _v18(x: object) -> bool:
    # https://schemas.pyrunc.invalid/defs.json#/$defs/int32
    if not ((isinstance(x, int) and not isinstance(x, bool)) or (isinstance(x, float) and x.is_integer())):
        return False
    if x < -2147483648:
        return False
    if x > 2147483647:
        return False
    return True


def _v19(x: object) -> bool:
    # https://schemas.pyrunc.invalid/defs-linux.json#/$defs/schedFlag
    if not isinstance(x, str):
        return False
    if x not in _E2:
        return False
    return True


def _v20(x: object) -> bool:
    # https://schemas.pyrunc.invalid/config-schema.json#/properties/process/properties/scheduler/properties/flags
    if not isinstance(x, list):
        return False
    for v in x:
        if not _v19(v):
            return False
    return True


def _v21(x: object) -> bool:
    # https://schemas.pyrunc.invalid/config-schema.json#/properties/process/properties/scheduler
    if not isinstance(x, dict):
        return False
    if "policy" not in x:
        return False
    if not _v17(x["policy"]):
        return False
    if "nice" in x and not _v18(x["nice"]):
        return False
    if "priority" in x and not _v18(x["priority"]):
        return False
    if "flags" in x and not _v20(x["flags"]):
        return False
    if "runtime" in x and not _v7(x["runtime"]):
        return False
    if "deadline" in x and not _v7(x["deadline"]):
        return False
    if "period" in x and not _v7(x["period"]):
        return False
    return True


def _v22(x: object) -> bool:
    # https://schemas.pyrunc.invalid/config-schema.json#/properties/process/properties/ioPriority/properties/class
    if not isinstance(x, str):
        return False
    if x not in _E3:
        return False
    return True


def _v23(x: object) -> bool:
    # https://schemas.pyrunc.invalid/config-schema.json#/properties/process/properties/ioPriority
    if not isinstance(x, dict):
        return False
    if "class" not in x:
        return False
    if not _v22(x["class"]):
        return False
    if "priority" in x and not _v18(x["priority"]):
        return False
    return True


def _v24(x: object) -> bool:
    # https://schemas.pyrunc.invalid/config-schema.json#/properties/process/properties/execCPUAffinity/properties/initial
    if not isinstance(x, str):
        return False
    if not _search(_P4, x):
        return False
    return True


def _v25(x: object) -> bool:
    # https://schemas.pyrunc.invalid/config-schema.json#/properties/process/properties/execCPUAffinity
    if not isinstance(x, dict):
        return False
    if "initial" in x and not _v24(x["initial"]):
        return False
    if "final" in x and not _v24(x["final"]):
        return False
    return True


def _v26(x: object) -> bool:
    # https://schemas.pyrunc.invalid/config-schema.json#/properties/process
    if not isinstance(x, dict):
        return False
    if "cwd" not in x:
        return False
    if "terminal" in x and not isinstance(x["terminal"], bool):
        return False
    if "consoleSize" in x and not _v8(x["consoleSize"]):
        return False
    if not isinstance(x["cwd"], str):
        return False
    if "env" in x and not _v1(x["env"]):
        return False
    if "args" in x and not _v9(x["args"]):
        return False
    if "commandLine" in x and not isinstance(x["commandLine"], str):
        return False
    if "user" in x and not _v11(x["user"]):
        return False
    if "capabilities" in x and not _v12(x["capabilities"]):
        return False
    if "rlimits" in x and not _v15(x["rlimits"]):
        return False
    if "noNewPrivileges" in x and not isinstance(x["noNewPrivileges"], bool):
        return False
    if "apparmorProfile" in x and not isinstance(x["apparmorProfile"], str):
        return False
    if "oomScoreAdj" in x and not _v16(x["oomScoreAdj"]):
        return False
    if "scheduler" in x and not _v21(x["scheduler"]):
        return False
    if "selinuxLabel" in x and not isinstance(x["selinuxLabel"], str):
        return False
    if "ioPriority" in x and not _v23(x["ioPriority"]):
        return False
    if "execCPUAffinity" in x and not _v25(x["execCPUAffinity"]):
        return False
    return True


def _v27(x: object) -> bool:
    # https://schemas.pyrunc.invalid/defs.json#/$defs/hook/properties/timeout
    if not ((isinstance(x, int) and not isinstance(x, bool)) or (isinstance(x, float) and x.is_integer())):
        return False
    if x < 1:
        return False
    return True


def _v28(x: object) -> bool:
    # https://schemas.pyrunc.invalid/defs.json#/$defs/hook
    if not isinstance(x, dict):
        return False
    if "path" not in x:
        return False
    if not isinstance(x["path"], str):
        return False
    if "args" in x and not _v1(x["args"]):
        return False
    if "env" in x and not _v1(x["env"]):
        return False
    if "timeout" in x and not _v27(x["timeout"]):
        return False
    return True


def _v29(x: object) -> bool:
    # https://schemas.pyrunc.invalid/defs.json#/$defs/hooks
    if not isinstance(x, list):
        return False
    for v in x:
        if not _v28(v):
            return False
    return True


def _v30(x: object) -> bool:
    # https://schemas.pyrunc.invalid/config-schema.json#/properties/hooks
    if not isinstance(x, dict):
        return False
    if "prestart" in x and not _v29(x["prestart"]):
        return False
    if "createRuntime" in x and not _v29(x["createRuntime"]):
        return False
    if "createContainer" in x and not _v29(x["createContainer"]):
        return False
    if "startContainer" in x and not _v29(x["startContainer"]):
        return False
    if "poststart" in x and not _v29(x["poststart"]):
        return False
    if "poststop" in x and not _v29(x["poststop"]):
        return False
    return True


def _v31(x: object) -> bool:
    # https://schemas.pyrunc.invalid/defs.json#/$defs/annotations/propertyNames
    if isinstance(x, str):
        if len(x) < 1:
            return False
    return True


def _v32(x: object) -> bool:
    # https://schemas.pyrunc.invalid/defs.json#/$defs/annotations
    if not isinstance(x, dict):
        return False
    for v in x.values():
        if not isinstance(v, str):
            return False
    for k in x:
        if not _v31(k):
            return False
    return True


def _v33(x: object) -> bool:
    # https://schemas.pyrunc.invalid/defs-linux.json#/$defs/namespaceType
    if not isinstance(x, str):
        return False
    if x not in _E5:
        return False
    return True


def _v34(x: object) -> bool:
    # https://schemas.pyrunc.invalid/defs-linux.json#/$defs/namespace
    if not isinstance(x, dict):
        return False
    if "type" not in x:
        return False
    if not _v33(x["type"]):
        return False
    if "path" in x and not isinstance(x["path"], str):
        return False
    return True


def _v35(x: object) -> bool:
    # https://schemas.pyrunc.invalid/config-linux.json#/properties/namespaces
    if not isinstance(x, list):
        return False
    for v in x:
        if not _v34(v):
            return False
    return True


def _v36(x: object) -> bool:
    # https://schemas.pyrunc.invalid/defs.json#/$defs/int64
    if not ((isinstance(x, int) and not isinstance(x, bool)) or (isinstance(x, float) and x.is_integer())):
        return False
    if x < -9223372036854775808:
        return False
    if x > 9223372036854775807:
        return False
    return True


def _v37(x: object) -> bool:
    # https://schemas.pyrunc.invalid/defs-linux.json#/$defs/clockOffset
    if not isinstance(x, dict):
        return False
    if "secs" in x and not _v36(x["secs"]):
        return False
    if "nanosecs" in x and not _v2(x["nanosecs"]):
        return False
    return True


def _v38(x: object) -> bool:
    # https://schemas.pyrunc.invalid/config-linux.json#/properties/timeOffsets
    if not isinstance(x, dict):
        return False
    if "monotonic" in x and not _v37(x["monotonic"]):
        return False
    if "boottime" in x and not _v37(x["boottime"]):
        return False
    return True


def _v39(x: object) -> bool:
    # https://schemas.pyrunc.invalid/defs-linux.json#/$defs/device/properties/type
    if not isinstance(x, str):
        return False
    if x not in _E6:
        return False
    return True


def _v40(x: object) -> bool:
    # https://schemas.pyrunc.invalid/defs-linux.json#/$defs/device/properties/fileMode
    if not ((isinstance(x, int) and not isinstance(x, bool)) or (isinstance(x, float) and x.is_integer())):
        return False
    if x < 0:
        return False
    if x > 511:
        return False
    return True


def _v41(x: object) -> bool:
    # https://schemas.pyrunc.invalid/defs-linux.json#/$defs/device
    if not isinstance(x, dict):
        return False
    if "type" not in x or "path" not in x:
        return False
    if not _v39(x["type"]):
        return False
    if not isinstance(x["path"], str):
        return False
    if "major" in x and not _v36(x["major"]):
        return False
    if "minor" in x and not _v36(x["minor"]):
        return False
    if "fileMode" in x and not _v40(x["fileMode"]):
        return False
    if "uid" in x and not _v2(x["uid"]):
        return False
    if "gid" in x and not _v2(x["gid"]):
        return False
    return True


def _v42(x: object) -> bool:
    # https://schemas.pyrunc.invalid/config-linux.json#/properties/devices
    if not isinstance(x, list):
        return False
    for v in x:
        if not _v41(v):
            return False
    return True


def _v43(x: object) -> bool:
    # https://schemas.pyrunc.invalid/defs-linux.json#/$defs/netDevice
    if not isinstance(x, dict):
        return False
    if "name" in x and not isinstance(x["name"], str):
        return False
    return True


def _v44(x: object) -> bool:
    # https://schemas.pyrunc.invalid/config-linux.json#/properties/netDevices
    if not isinstance(x, dict):
        return False
    for v in x.values():
        if not _v43(v):
            return False
    return True


def _v45(x: object) -> bool:
    # https://schemas.pyrunc.invalid/defs-linux.json#/$defs/deviceRule
    if not isinstance(x, dict):
        return False
    if "allow" not in x:
        return False
    if not isinstance(x["allow"], bool):
        return False
    if "type" in x and not isinstance(x["type"], str):
        return False
    if "major" in x and not _v36(x["major"]):
        return False
    if "minor" in x and not _v36(x["minor"]):
        return False
    if "access" in x and not isinstance(x["access"], str):
        return False
    return True


def _v46(x: object) -> bool:
    # https://schemas.pyrunc.invalid/config-linux.json#/properties/resources/properties/devices
    if not isinstance(x, list):
        return False
    for v in x:
        if not _v45(v):
            return False
    return True


def _v47(x: object) -> bool:
    # https://schemas.pyrunc.invalid/config-linux.json#/properties/resources/properties/memory
    if not isinstance(x, dict):
        return False
    if "limit" in x and not _v36(x["limit"]):
        return False
    if "reservation" in x and not _v36(x["reservation"]):
        return False
    if "swap" in x and not _v36(x["swap"]):
        return False
    if "kernel" in x and not _v36(x["kernel"]):
        return False
    if "kernelTCP" in x and not _v36(x["kernelTCP"]):
        return False
    if "swappiness" in x and not _v7(x["swappiness"]):
        return False
    if "disableOOMKiller" in x and not isinstance(x["disableOOMKiller"], bool):
        return False
    if "useHierarchy" in x and not isinstance(x["useHierarchy"], bool):
        return False
    if "checkBeforeUpdate" in x and not isinstance(x["checkBeforeUpdate"], bool):
        return False
    return True


def _v48(x: object) -> bool:
    # https://schemas.pyrunc.invalid/config-linux.json#/properties/resources/properties/cpu
    if not isinstance(x, dict):
        return False
    if "shares" in x and not _v7(x["shares"]):
        return False
    if "quota" in x and not _v36(x["quota"]):
        return False
    if "burst" in x and not _v7(x["burst"]):
        return False
    if "period" in x and not _v7(x["period"]):
        return False
    if "realtimeRuntime" in x and not _v36(x["realtimeRuntime"]):
        return False
    if "realtimePeriod" in x and not _v7(x["realtimePeriod"]):
        return False
    if "cpus" in x and not isinstance(x["cpus"], str):
        return False
    if "mems" in x and not isinstance(x["mems"], str):
        return False
    if "idle" in x and not _v36(x["idle"]):
        return False
    return True


def _v49(x: object) -> bool:
    # https://schemas.pyrunc.invalid/defs.json#/$defs/uint16
    if not ((isinstance(x, int) and not isinstance(x, bool)) or (isinstance(x, float) and x.is_integer())):
        return False
    if x < 0:
        return False
    if x > 65535:
        return False
    return True


def _v50(x: object) -> bool:
    # https://schemas.pyrunc.invalid/defs-linux.json#/$defs/blockDeviceWeight
    if not isinstance(x, dict):
        return False
    if "major" not in x or "minor" not in x:
        return False
    if not _v36(x["major"]):
        return False
    if not _v36(x["minor"]):
        return False
    if "weight" in x and not _v49(x["weight"]):
        return False
    if "leafWeight" in x and not _v49(x["leafWeight"]):
        return False
    return True


def _v51(x: object) -> bool:
    # https://schemas.pyrunc.invalid/config-linux.json#/properties/resources/properties/blockIO/properties/weightDevice
    if not isinstance(x, list):
        return False
    for v in x:
        if not _v50(v):
            return False
    return True


def _v52(x: object) -> bool:
    # https://schemas.pyrunc.invalid/defs-linux.json#/$defs/blockDeviceRate
    if not isinstance(x, dict):
        return False
    if "major" not in x or "minor" not in x:
        return False
    if not _v36(x["major"]):
        return False
    if not _v36(x["minor"]):
        return False
    if "rate" in x and not _v7(x["rate"]):
        return False
    return True


def _v53(x: object) -> bool:
    # https://schemas.pyrunc.invalid/defs-linux.json#/$defs/blockDeviceRates
    if not isinstance(x, list):
        return False
    for v in x:
        if not _v52(v):
            return False
    return True


def _v54(x: object) -> bool:
    # https://schemas.pyrunc.invalid/config-linux.json#/properties/resources/properties/blockIO
    if not isinstance(x, dict):
        return False
    if "weight" in x and not _v49(x["weight"]):
        return False
    if "leafWeight" in x and not _v49(x["leafWeight"]):
        return False
    if "weightDevice" in x and not _v51(x["weightDevice"]):
        return False
    if "throttleReadBpsDevice" in x and not _v53(x["throttleReadBpsDevice"]):
        return False
    if "throttleWriteBpsDevice" in x and not _v53(x["throttleWriteBpsDevice"]):
        return False
    if "throttleReadIOPSDevice" in x and not _v53(x["throttleReadIOPSDevice"]):
        return False
    if "throttleWriteIOPSDevice" in x and not _v53(x["throttleWriteIOPSDevice"]):
        return False
    return True


def _v55(x: object) -> bool:
    # https://schemas.pyrunc.invalid/config-linux.json#/properties/resources/properties/hugepageLimits/items/properties/pageSize
    if not isinstance(x, str):
        return False
    if not _search(_P7, x):
        return False
    return True


def _v56(x: object) -> bool:
    # https://schemas.pyrunc.invalid/config-linux.json#/properties/resources/properties/hugepageLimits/items
    if not isinstance(x, dict):
        return False
    if "pageSize" not in x or "limit" not in x:
        return False
    if not _v55(x["pageSize"]):
        return False
    if not _v7(x["limit"]):
        return False
    return True


def _v57(x: object) -> bool:
    # https://schemas.pyrunc.invalid/config-linux.json#/properties/resources/properties/hugepageLimits
    if not isinstance(x, list):
        return False
    for v in x:
        if not _v56(v):
            return False
    return True


def _v58(x: object) -> bool:
    # https://schemas.pyrunc.invalid/config-linux.json#/properties/resources/properties/network/properties/priorities/items
    if not isinstance(x, dict):
        return False
    if "name" not in x or "priority" not in x:
        return False
    if not isinstance(x["name"], str):
        return False
    if not _v2(x["priority"]):
        return False
    return True


def _v59(x: object) -> bool:
    # https://schemas.pyrunc.invalid/config-linux.json#/properties/resources/properties/network/properties/priorities
    if not isinstance(x, list):
        return False
    for v in x:
        if not _v58(v):
            return False
    return True


def _v60(x: object) -> bool:
    # https://schemas.pyrunc.invalid/config-linux.json#/properties/resources/properties/network
    if not isinstance(x, dict):
        return False
    if "classID" in x and not _v2(x["classID"]):
        return False
    if "priorities" in x and not _v59(x["priorities"]):
        return False
    return True


def _v61(x: object) -> bool:
    # https://schemas.pyrunc.invalid/config-linux.json#/properties/resources/properties/pids
    if not isinstance(x, dict):
        return False
    if "limit" not in x:
        return False
    if not _v36(x["limit"]):
        return False
    return True


def _v62(x: object) -> bool:
    # https://schemas.pyrunc.invalid/defs-linux.json#/$defs/rdmaLimit
    if not isinstance(x, dict):
        return False
    if "hcaHandles" in x and not _v2(x["hcaHandles"]):
        return False
    if "hcaObjects" in x and not _v2(x["hcaObjects"]):
        return False
    return True


def _v63(x: object) -> bool:
    # https://schemas.pyrunc.invalid/config-linux.json#/properties/resources/properties/rdma
    if not isinstance(x, dict):
        return False
    for v in x.values():
        if not _v62(v):
            return False
    return True


def _v64(x: object) -> bool:
    # https://schemas.pyrunc.invalid/defs.json#/$defs/stringMap
    if not isinstance(x, dict):
        return False
    for v in x.values():
        if not isinstance(v, str):
            return False
    return True


def _v65(x: object) -> bool:
    # https://schemas.pyrunc.invalid/config-linux.json#/properties/resources
    if not isinstance(x, dict):
        return False
    if "devices" in x and not _v46(x["devices"]):
        return False
    if "memory" in x and not _v47(x["memory"]):
        return False
    if "cpu" in x and not _v48(x["cpu"]):
        return False
    if "blockIO" in x and not _v54(x["blockIO"]):
        return False
    if "hugepageLimits" in x and not _v57(x["hugepageLimits"]):
        return False
    if "network" in x and not _v60(x["network"]):
        return False
    if "pids" in x and not _v61(x["pids"]):
        return False
    if "rdma" in x and not _v63(x["rdma"]):
        return False
    if "unified" in x and not _v64(x["unified"]):
        return False
    return True


def _v66(x: object) -> bool:
    # https://schemas.pyrunc.invalid/config-linux.json#/properties/intelRdt/properties/memBwSchema
    if not isinstance(x, str):
        return False
    if not _search(_P8, x):
        return False
    return True


def _v67(x: object) -> bool:
    # https://schemas.pyrunc.invalid/config-linux.json#/properties/intelRdt
    if not isinstance(x, dict):
        return False
    if "closID" in x and not isinstance(x["closID"], str):
        return False
    if "schemata" in x and not _v1(x["schemata"]):
        return False
    if "l3CacheSchema" in x and not isinstance(x["l3CacheSchema"], str):
        return False
    if "memBwSchema" in x and not _v66(x["memBwSchema"]):
        return False
    if "enableMonitoring" in x and not isinstance(x["enableMonitoring"], bool):
        return False
    return True


def _v68(x: object) -> bool:
    # https://schemas.pyrunc.invalid/defs-linux.json#/$defs/seccompAction
    if not isinstance(x, str):
        return False
    if x not in _E9:
        return False
    return True


def _v69(x: object) -> bool:
    # https://schemas.pyrunc.invalid/defs-linux.json#/$defs/seccompArch
    if not isinstance(x, str):
        return False
    if x not in _E10:
        return False
    return True


def _v70(x: object) -> bool:
    # https://schemas.pyrunc.invalid/config-linux.json#/properties/seccomp/properties/architectures
    if not isinstance(x, list):
        return False
    for v in x:
        if not _v69(v):
            return False
    return True


def _v71(x: object) -> bool:
    # https://schemas.pyrunc.invalid/defs-linux.json#/$defs/seccompFlag
    if not isinstance(x, str):
        return False
    if x not in _E11:
        return False
    return True


def _v72(x: object) -> bool:
    # https://schemas.pyrunc.invalid/config-linux.json#/properties/seccomp/properties/flags
    if not isinstance(x, list):
        return False
    for v in x:
        if not _v71(v):
            return False
    return True


def _v73(x: object) -> bool:
    # https://schemas.pyrunc.invalid/defs-linux.json#/$defs/seccompOperator
    if not isinstance(x, str):
        return False
    if x not in _E12:
        return False
    return True


def _v74(x: object) -> bool:
    # https://schemas.pyrunc.invalid/defs-linux.json#/$defs/syscallArg
    if not isinstance(x, dict):
        return False
    if "index" not in x or "value" not in x or "op" not in x:
        return False
    if not _v2(x["index"]):
        return False
    if not _v7(x["value"]):
        return False
    if "valueTwo" in x and not _v7(x["valueTwo"]):
        return False
    if not _v73(x["op"]):
        return False
    return True


def _v75(x: object) -> bool:
    # https://schemas.pyrunc.invalid/defs-linux.json#/$defs/syscallRule/properties/args
    if not isinstance(x, list):
        return False
    for v in x:
        if not _v74(v):
            return False
    return True


def _v76(x: object) -> bool:
    # https://schemas.pyrunc.invalid/defs-linux.json#/$defs/syscallRule
    if not isinstance(x, dict):
        return False
    if "names" not in x or "action" not in x:
        return False
    if not _v9(x["names"]):
        return False
    if not _v68(x["action"]):
        return False
    if "errnoRet" in x and not _v2(x["errnoRet"]):
        return False
    if "args" in x and not _v75(x["args"]):
        return False
    return True


def _v77(x: object) -> bool:
    # https://schemas.pyrunc.invalid/config-linux.json#/properties/seccomp/properties/syscalls
    if not isinstance(x, list):
        return False
    for v in x:
        if not _v76(v):
            return False
    return True


def _v78(x: object) -> bool:
    # https://schemas.pyrunc.invalid/config-linux.json#/properties/seccomp
    if not isinstance(x, dict):
        return False
    if "defaultAction" not in x:
        return False
    if not _v68(x["defaultAction"]):
        return False
    if "defaultErrnoRet" in x and not _v2(x["defaultErrnoRet"]):
        return False
    if "architectures" in x and not _v70(x["architectures"]):
        return False
    if "flags" in x and not _v72(x["flags"]):
        return False
    if "listenerPath" in x and not isinstance(x["listenerPath"], str):
        return False
    if "listenerMetadata" in x and not isinstance(x["listenerMetadata"], str):
        return False
    if "syscalls" in x and not _v77(x["syscalls"]):
        return False
    return True


def _v79(x: object) -> bool:
    # https://schemas.pyrunc.invalid/config-linux.json#/properties/rootfsPropagation
    if not isinstance(x, str):
        return False
    if x not in _E13:
        return False
    return True


def _v80(x: object) -> bool:
    # https://schemas.pyrunc.invalid/config-linux.json#/properties/personality/properties/domain
    if not isinstance(x, str):
        return False
    if x not in _E14:
        return False
    return True


def _v81(x: object) -> bool:
    # https://schemas.pyrunc.invalid/config-linux.json#/properties/personality
    if not isinstance(x, dict):
        return False
    if "domain" in x and not _v80(x["domain"]):
        return False
    if "flags" in x and not _v1(x["flags"]):
        return False
    return True


def _v82(x: object) -> bool:
    # https://schemas.pyrunc.invalid/defs-linux.json#/$defs/mempolicyMode
    if not isinstance(x, str):
        return False
    if x not in _E15:
        return False
    return True


def _v83(x: object) -> bool:
    # https://schemas.pyrunc.invalid/defs-linux.json#/$defs/mempolicyFlag
    if not isinstance(x, str):
        return False
    if x not in _E16:
        return False
    return True


def _v84(x: object) -> bool:
    # https://schemas.pyrunc.invalid/config-linux.json#/properties/memoryPolicy/properties/flags
    if not isinstance(x, list):
        return False
    for v in x:
        if not _v83(v):
            return False
    return True


def _v85(x: object) -> bool:
    # https://schemas.pyrunc.invalid/config-linux.json#/properties/memoryPolicy
    if not isinstance(x, dict):
        return False
    if "mode" in x and not _v82(x["mode"]):
        return False
    if "nodes" in x and not isinstance(x["nodes"], str):
        return False
    if "flags" in x and not _v84(x["flags"]):
        return False
    return True


def _v86(x: object) -> bool:
    # https://schemas.pyrunc.invalid/config-linux.json
    if not isinstance(x, dict):
        return False
    if "namespaces" in x and not _v35(x["namespaces"]):
        return False
    if "uidMappings" in x and not _v4(x["uidMappings"]):
        return False
    if "gidMappings" in x and not _v4(x["gidMappings"]):
        return False
    if "timeOffsets" in x and not _v38(x["timeOffsets"]):
        return False
    if "devices" in x and not _v42(x["devices"]):
        return False
    if "netDevices" in x and not _v44(x["netDevices"]):
        return False
    if "cgroupsPath" in x and not isinstance(x["cgroupsPath"], str):
        return False
    if "resources" in x and not _v65(x["resources"]):
        return False
    if "intelRdt" in x and not _v67(x["intelRdt"]):
        return False
    if "sysctl" in x and not _v64(x["sysctl"]):
        return False
    if "seccomp" in x and not _v78(x["seccomp"]):
        return False
    if "rootfsPropagation" in x and not _v79(x["rootfsPropagation"]):
        return False
    if "maskedPaths" in x and not _v1(x["maskedPaths"]):
        return False
    if "readonlyPaths" in x and not _v1(x["readonlyPaths"]):
        return False
    if "mountLabel" in x and not isinstance(x["mountLabel"], str):
        return False
    if "personality" in x and not _v81(x["personality"]):
        return False
    if "memoryPolicy" in x and not _v85(x["memoryPolicy"]):
        return False
    return True


def _v87(x: object) -> bool:
    # https://schemas.pyrunc.invalid/config-schema.json
    if not isinstance(x, dict):
        return False
    if "ociVersion" not in x:
        return False
    if not isinstance(x["ociVersion"], str):
        return False
    if "root" in x and not _v0(x["root"]):
        return False
    if "mounts" in x and not _v6(x["mounts"]):
        return False
    if "process" in x and not _v26(x["process"]):
        return False
    if "hostname" in x and not isinstance(x["hostname"], str):
        return False
    if "domainname" in x and not isinstance(x["domainname"], str):
        return False
    if "hooks" in x and not _v30(x["hooks"]):
        return False
    if "annotations" in x and not _v32(x["annotations"]):
        return False
    if "linux" in x and not _v86(x["linux"]):
        return False
    if "solaris" in x and not isinstance(x["solaris"], dict):
        return False
    if "windows" in x and not isinstance(x["windows"], dict):
        return False
    if "vm" in x and not isinstance(x["vm"], dict):
        return False
    if "zos" in x and not isinstance(x["zos"], dict):
        return False
    if "freebsd" in x and not isinstance(x["freebsd"], dict):
        return False
    return True


def _v88(x: object) -> bool:
    # https://schemas.pyrunc.invalid/state-schema.json#/properties/status
    if not isinstance(x, str):
        return False
    if x not in _E17:
        return False
    return True


def _v89(x: object) -> bool:
    # https://schemas.pyrunc.invalid/state-schema.json#/properties/pid
    if not ((isinstance(x, int) and not isinstance(x, bool)) or (isinstance(x, float) and x.is_integer())):
        return False
    if x < 0:
        return False
    return True


def _v90(x: object) -> bool:
    # https://schemas.pyrunc.invalid/state-schema.json
    if not isinstance(x, dict):
        return False
    if "ociVersion" not in x or "id" not in x or "status" not in x or "bundle" not in x:
        return False
    if not isinstance(x["ociVersion"], str):
        return False
    if not isinstance(x["id"], str):
        return False
    if not _v88(x["status"]):
        return False
    if "pid" in x and not _v89(x["pid"]):
        return False
    if not isinstance(x["bundle"], str):
        return False
    if "annotations" in x and not _v32(x["annotations"]):
        return False
    return True


def _v91(x: object) -> bool:
    # https://schemas.pyrunc.invalid/features-linux.json#/properties/namespaces
    if not isinstance(x, list):
        return False
    for v in x:
        if not _v33(v):
            return False
    return True


def _v92(x: object) -> bool:
    # https://schemas.pyrunc.invalid/features-linux.json#/properties/capabilities/items
    if not isinstance(x, str):
        return False
    if not _search(_P18, x):
        return False
    return True


def _v93(x: object) -> bool:
    # https://schemas.pyrunc.invalid/features-linux.json#/properties/capabilities
    if not isinstance(x, list):
        return False
    for v in x:
        if not _v92(v):
            return False
    return True


def _v94(x: object) -> bool:
    # https://schemas.pyrunc.invalid/features-linux.json#/properties/cgroup
    if not isinstance(x, dict):
        return False
    if "v1" in x and not isinstance(x["v1"], bool):
        return False
    if "v2" in x and not isinstance(x["v2"], bool):
        return False
    if "systemd" in x and not isinstance(x["systemd"], bool):
        return False
    if "systemdUser" in x and not isinstance(x["systemdUser"], bool):
        return False
    if "rdma" in x and not isinstance(x["rdma"], bool):
        return False
    return True


def _v95(x: object) -> bool:
    # https://schemas.pyrunc.invalid/features-linux.json#/properties/seccomp/properties/actions
    if not isinstance(x, list):
        return False
    for v in x:
        if not _v68(v):
            return False
    return True


def _v96(x: object) -> bool:
    # https://schemas.pyrunc.invalid/features-linux.json#/properties/seccomp/properties/operators
    if not isinstance(x, list):
        return False
    for v in x:
        if not _v73(v):
            return False
    return True


def _v97(x: object) -> bool:
    # https://schemas.pyrunc.invalid/features-linux.json#/properties/seccomp
    if not isinstance(x, dict):
        return False
    if "enabled" in x and not isinstance(x["enabled"], bool):
        return False
    if "actions" in x and not _v95(x["actions"]):
        return False
    if "operators" in x and not _v96(x["operators"]):
        return False
    if "archs" in x and not _v70(x["archs"]):
        return False
    if "knownFlags" in x and not _v72(x["knownFlags"]):
        return False
    if "supportedFlags" in x and not _v72(x["supportedFlags"]):
        return False
    return True


def _v98(x: object) -> bool:
    # https://schemas.pyrunc.invalid/features-linux.json#/properties/apparmor
    if not isinstance(x, dict):
        return False
    if "enabled" in x and not isinstance(x["enabled"], bool):
        return False
    return True


def _v99(x: object) -> bool:
    # https://schemas.pyrunc.invalid/features-linux.json#/properties/intelRdt
    if not isinstance(x, dict):
        return False
    if "enabled" in x and not isinstance(x["enabled"], bool):
        return False
    if "schemata" in x and not isinstance(x["schemata"], bool):
        return False
    return True


def _v100(x: object) -> bool:
    # https://schemas.pyrunc.invalid/features-linux.json#/properties/mountExtensions
    if not isinstance(x, dict):
        return False
    if "idmap" in x and not _v98(x["idmap"]):
        return False
    return True


def _v101(x: object) -> bool:
    # https://schemas.pyrunc.invalid/features-linux.json#/properties/memoryPolicy/properties/modes
    if not isinstance(x, list):
        return False
    for v in x:
        if not _v82(v):
            return False
    return True


def _v102(x: object) -> bool:
    # https://schemas.pyrunc.invalid/features-linux.json#/properties/memoryPolicy
    if not isinstance(x, dict):
        return False
    if "modes" in x and not _v101(x["modes"]):
        return False
    if "flags" in x and not _v84(x["flags"]):
        return False
    return True


def _v103(x: object) -> bool:
    # https://schemas.pyrunc.invalid/features-linux.json
    if not isinstance(x, dict):
        return False
    if "namespaces" in x and not _v91(x["namespaces"]):
        return False
    if "capabilities" in x and not _v93(x["capabilities"]):
        return False
    if "cgroup" in x and not _v94(x["cgroup"]):
        return False
    if "seccomp" in x and not _v97(x["seccomp"]):
        return False
    if "apparmor" in x and not _v98(x["apparmor"]):
        return False
    if "selinux" in x and not _v98(x["selinux"]):
        return False
    if "intelRdt" in x and not _v99(x["intelRdt"]):
        return False
    if "mountExtensions" in x and not _v100(x["mountExtensions"]):
        return False
    if "netDevices" in x and not _v98(x["netDevices"]):
        return False
    if "memoryPolicy" in x and not _v102(x["memoryPolicy"]):
        return False
    return True


def _v104(x: object) -> bool:
    # https://schemas.pyrunc.invalid/features-schema.json
    if not isinstance(x, dict):
        return False
    if "ociVersionMin" not in x or "ociVersionMax" not in x:
        return False
    if not isinstance(x["ociVersionMin"], str):
        return False
    if not isinstance(x["ociVersionMax"], str):
        return False
    if "hooks" in x and not _v1(x["hooks"]):
        return False
    if "mountOptions" in x and not _v1(x["mountOptions"]):
        return False
    if "annotations" in x and not _v32(x["annotations"]):
        return False
    if "potentiallyUnsafeConfigAnnotations" in x and not _v1(x["potentiallyUnsafeConfigAnnotations"]):
        return False
    if "linux" in x and not _v103(x["linux"]):
        return False
    return True


def is_valid_config(doc: object) -> bool:
    """True when ``doc`` is valid against config-schema.json."""
    return _v87(doc)


def is_valid_state(doc: object) -> bool:
    """True when ``doc`` is valid against state-schema.json."""
    return _v90(doc)


def is_valid_features(doc: object) -> bool:
    """True when ``doc`` is valid against features-schema.json."""
    return _v104(doc)

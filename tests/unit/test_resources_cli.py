"""Pure parts of the resource commands: units, durations, merging, ps filtering."""

from __future__ import annotations

import pytest

from pyrunc.cli.events_cmd import parse_duration
from pyrunc.cli.update_cmd import ram_in_bytes, resources_from_flags
from pyrunc.errors import PyruncError, UsageError
from pyrunc.runtime_resources import filter_ps_output, merge_resources, pid_column

MiB = 1 << 20


@pytest.mark.parametrize("text,expected", [
    ("1024", 1024), ("16m", 16 * MiB), ("16M", 16 * MiB), ("16mb", 16 * MiB), ("16MiB", 16 * MiB),
    ("1g", 1 << 30), ("1.5k", 1536), ("2 KB", 2048), ("10b", 10), ("3t", 3 << 40), ("1p", 1 << 50),
    ("0", 0),
])
def test_ram_in_bytes_accepts_docker_units(text, expected):
    assert ram_in_bytes(text) == expected


@pytest.mark.parametrize("text,message", [
    ("", "invalid size: ''"), ("m", "invalid size: 'm'"), ("12x", "invalid suffix: 'x'"),
    ("12mbb", "invalid suffix: 'mbb'"), ("12bk", "invalid suffix: 'bk'"), ("12mx", "invalid suffix: 'mx'"),
    ("-5", "invalid size: '-5'"),
])
def test_ram_in_bytes_rejects_like_go_units(text, message):
    with pytest.raises(ValueError) as e:
        ram_in_bytes(text)
    assert str(e.value) == message


@pytest.mark.parametrize("text,seconds", [
    ("5s", 5.0), ("250ms", 0.25), ("1m30s", 90.0), ("1h", 3600.0), ("0", 0.0), ("1.5s", 1.5),
    ("100us", 1e-4), ("-1s", -1.0),
])
def test_parse_duration_reads_go_durations(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "5", "s", "5x", "1s2", "soon"])
def test_parse_duration_rejects_garbage(text):
    with pytest.raises(UsageError, match="invalid duration"):
        parse_duration(text)


def _flags(**given):
    names = ["blkio_weight", "cpu_period", "cpu_quota", "cpu_burst", "cpu_share", "cpu_rt_period",
             "cpu_rt_runtime", "cpuset_cpus", "cpuset_mems", "kernel_memory", "kernel_memory_tcp",
             "memory", "cpu_idle", "memory_reservation", "memory_swap", "pids_limit"]
    values = dict.fromkeys(names)
    values.update(given)
    return values


def test_flags_become_a_resources_delta():
    delta, warnings = resources_from_flags(_flags(
        memory="16m", memory_swap="-1", memory_reservation="8m", cpu_share="512", cpu_quota="-1",
        cpu_period="100000", cpu_burst="1000", cpu_rt_period="1000000", cpu_rt_runtime="950000",
        cpu_idle="1", cpuset_cpus="0-1", cpuset_mems="0", pids_limit="42", blkio_weight="300"))
    assert warnings == []
    assert delta == {
        "memory": {"limit": 16 * MiB, "swap": -1, "reservation": 8 * MiB},
        "cpu": {"shares": 512, "quota": -1, "period": 100000, "burst": 1000, "realtimePeriod": 1000000,
                "realtimeRuntime": 950000, "idle": 1, "cpus": "0-1", "mems": "0"},
        "pids": {"limit": 42},
        "blockIO": {"weight": 300},
    }


def test_no_flags_no_delta_and_kernel_memory_only_warns():
    assert resources_from_flags(_flags()) == ({}, [])
    delta, warnings = resources_from_flags(_flags(kernel_memory="1m", kernel_memory_tcp="1m"))
    assert delta == {}
    assert warnings == ["Setting --kernel-memory is ignored and will be removed",
                        "Setting --kernel-memory-tcp is ignored and will be removed"]


@pytest.mark.parametrize("given,message", [
    ({"cpu_share": "-5"}, 'invalid value for cpu-share: strconv.ParseUint: parsing "-5": invalid syntax'),
    ({"cpu_quota": "1e3"}, 'invalid value for cpu-quota: strconv.ParseInt: parsing "1e3": invalid syntax'),
    ({"memory": "lots"}, "invalid value for memory: invalid size: 'lots'"),
    ({"cpu_idle": "yes"}, 'invalid value for cpu-idle: strconv.ParseInt: parsing "yes": invalid syntax'),
])
def test_bad_flag_values_name_the_flag(given, message):
    with pytest.raises(PyruncError) as e:
        resources_from_flags(_flags(**given))
    assert str(e.value) == message


def test_merge_keeps_unmentioned_values_and_ignores_nulls_and_devices():
    current = {"memory": {"limit": 100, "swap": 200}, "cpu": {"shares": 2},
               "devices": [{"allow": False, "access": "rwm"}], "pids": {"limit": 5}}
    delta = {"memory": {"limit": 150, "swap": None}, "cpu": {"quota": 5000},
             "devices": [{"allow": True, "access": "rwm"}]}
    merged = merge_resources(current, delta)
    assert merged == {"memory": {"limit": 150, "swap": 200}, "cpu": {"shares": 2, "quota": 5000},
                      "devices": [{"allow": False, "access": "rwm"}], "pids": {"limit": 5}}
    assert current["memory"] == {"limit": 100, "swap": 200}   # not modified in place


def test_merge_unlimited_memory_lifts_swap_unless_given():
    assert merge_resources({"memory": {"limit": 1, "swap": 2}}, {"memory": {"limit": -1}})["memory"] == \
        {"limit": -1, "swap": -1}
    assert merge_resources({}, {"memory": {"limit": -1, "swap": 300}})["memory"] == {"limit": -1, "swap": 300}


def test_merge_rejects_non_objects():
    with pytest.raises(PyruncError, match="resources.memory"):
        merge_resources({}, {"memory": 5})


PS_EF = """UID          PID    PPID  C STIME TTY          TIME CMD
root           1       0  0 06:00 ?        00:00:01 /sbin/init
root         200       1  0 06:01 ?        00:00:00 sleep 1000
root         201     200  0 06:01 ?        00:00:00 sh -c echo PID 1
"""


def test_filter_ps_output_keeps_header_and_container_lines():
    assert filter_ps_output(PS_EF, [200, 201]) == PS_EF.splitlines()[:1] + PS_EF.splitlines()[2:]
    assert filter_ps_output(PS_EF, []) == PS_EF.splitlines()[:1]


def test_pid_column_and_errors():
    assert pid_column("  PID TTY STAT") == 0
    assert pid_column("USER PID %CPU") == 1
    with pytest.raises(PyruncError, match="couldn't find PID field in ps output"):
        pid_column("COMMAND")
    with pytest.raises(PyruncError, match="unable to parse pid"):
        filter_ps_output("PID CMD\nabc sh\n", [1])

"""Signal parsing and the runc-style option parser (pure)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyrunc.cli.args import opt, parse
from pyrunc.errors import UsageError
from pyrunc.plan.signals import parse_signal


@pytest.mark.parametrize("text,num", [("KILL", 9), ("SIGKILL", 9), ("sigterm", 15), ("9", 9),
                                      ("15", 15), ("USR1", 10), ("RTMIN+1", 35),
                                      ("SIGRTMAX", 64), ("WINCH", 28), ("0", 0)])
def test_signal_forms(text, num):
    assert parse_signal(text) == num


@pytest.mark.parametrize("bad", ["", "65", "SIGFOO", "-1", "RTMIN+40", "9x"])
def test_bad_signals(bad):
    with pytest.raises(UsageError):
        parse_signal(bad)


@given(st.text(max_size=20))
def test_signal_parser_never_crashes(text):
    try:
        n = parse_signal(text)
    except UsageError:
        return
    assert 0 <= n <= 64


OPTS = [opt("bundle", "--bundle", "-b", value=True, default=""),
        opt("detach", "--detach", "-d"), opt("env", "--env", "-e", value=True, multi=True)]


def test_value_forms():
    for argv in (["--bundle", "x"], ["--bundle=x"], ["-b", "x"], ["-b=x"]):
        values, rest = parse(OPTS, argv + ["id"])
        assert values["bundle"] == "x" and rest == ["id"]


def test_booleans_and_multi():
    values, rest = parse(OPTS, ["-d", "-e", "A=1", "--env=B=2", "id", "--not-a-flag"])
    assert values["detach"] is True and values["env"] == ["A=1", "B=2"]
    assert rest == ["id", "--not-a-flag"]
    assert parse(OPTS, ["--detach=false"])[0]["detach"] is False


def test_unknown_flag_and_missing_value():
    with pytest.raises(UsageError, match="flag provided but not defined: --nope"):
        parse(OPTS, ["--nope"])
    with pytest.raises(UsageError, match="needs an argument"):
        parse(OPTS, ["--bundle"])


def test_double_dash_ends_options():
    assert parse(OPTS, ["--", "-d"])[1] == ["-d"]
    assert parse(OPTS, ["id", "--", "-d"], interspersed=True) == (
        {"bundle": "", "detach": False, "env": []}, ["id", "-d"])


def test_interspersed_flags_follow_arguments():
    # runc (urfave/cli v3): `update ID --pids-limit 10`, `run ID --bundle DIR`.
    values, rest = parse(OPTS, ["id", "-b", "x", "more", "--detach", "-e=A=1"], interspersed=True)
    assert rest == ["id", "more"] and values["bundle"] == "x" and values["detach"] is True
    assert values["env"] == ["A=1"]
    # Without it (exec, ps, kill) the first argument ends the flags.
    assert parse(OPTS, ["id", "-b", "x"])[1] == ["id", "-b", "x"]
    with pytest.raises(UsageError, match="flag provided but not defined: --nope"):
        parse(OPTS, ["id", "--nope"], interspersed=True)


def test_sub_cgroup_arguments():
    from pyrunc.plan.process import parse_sub_cgroups

    assert parse_sub_cgroups(["a/../b"]) == {"": "b"}
    assert parse_sub_cgroups(["/"]) == {"": ""}
    assert parse_sub_cgroups(["cpu,memory:x", "pids:/y"]) == {"cpu": "x", "memory": "x", "pids": "y"}
    for bad in ("..", "cpu:../x", "a/../../b"):
        with pytest.raises(UsageError, match=r"^unable to create new parent process: .* is not a sub cgroup path$"):
            parse_sub_cgroups([bad])
    with pytest.raises(UsageError, match="missing <controller>: prefix"):
        parse_sub_cgroups(["x", "y"])

"""The --log / --log-format / --debug contract, as containerd's shim and podman read it.

runc creates the --log file on every call (empty when all went well), writes
``level=debug`` lines there with --debug (to stderr without --log), in
logrus's text format or, with --log-format json, one JSON object per line.
containerd keeps the msg of the last ``error`` entry; podman parses the whole
file as one JSON object, so without --debug a failure writes exactly one line.
"""

from __future__ import annotations

import datetime
import json
import re

import pytest

from tests.conftest import needs_root

pytestmark = needs_root

# logrus's text formatter: key=value pairs, values bare or Go-quoted.
TEXT_PAIR = re.compile(r'([a-z]+)=("(?:[^"\\]|\\.)*"|[^ "]+)(?: |$)')


def parse_text_line(line: str) -> dict[str, str]:
    """One logrus text line as a dict; fails on anything that is not key=value pairs."""
    pairs = TEXT_PAIR.findall(line)
    assert "".join(f"{k}={v} " for k, v in pairs).strip() == line, line
    return {k: json.loads(v) if v.startswith('"') else v for k, v in pairs}


def parse_log(text: str, fmt: str) -> list[dict[str, str]]:
    """Every line of a log file, each checked to be a valid entry of the format."""
    assert text.endswith("\n"), repr(text[-200:])
    entries = []
    for line in text.splitlines():
        entry = json.loads(line) if fmt == "json" else parse_text_line(line)
        assert {"level", "msg", "time"} <= set(entry), line
        # RFC 3339, as logrus prints it.
        datetime.datetime.fromisoformat(entry["time"].replace("Z", "+00:00"))
        entries.append(entry)
    return entries


def log_args(log, fmt: str, debug: bool = False) -> list[str]:
    return ["--log", str(log), "--log-format", fmt] + (["--debug"] if debug else [])


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_log_file_created_and_empty_on_success(runtime, bundle, tmp_path, fmt):
    cid = runtime.new_id("log")
    b = bundle(["sleep", "1000"])
    for i, command in enumerate((["create", "-b", str(b), cid], ["start", cid], ["state", cid],
                                 ["kill", cid, "KILL"], ["delete", "--force", cid], ["list"])):
        log = tmp_path / f"log-{i}.{fmt}"
        proc = runtime(*log_args(log, fmt), *command)
        assert proc.returncode == 0, (command, proc.stderr)
        assert log.exists(), command
        assert log.read_text() == "", (command, log.read_text())
        assert oct(log.stat().st_mode & 0o777) == oct(0o644 & ~_umask())


def _umask() -> int:
    import os

    old = os.umask(0)
    os.umask(old)
    return old


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_debug_lines_in_the_log_for_run(runtime, bundle, tmp_path, fmt):
    log = tmp_path / f"debug.{fmt}"
    proc = runtime(*log_args(log, fmt, debug=True), "run", "-b", str(bundle(["true"])),
                   runtime.new_id("dbg"))
    assert proc.returncode == 0, proc.stderr
    entries = parse_log(log.read_text(), fmt)
    assert entries and all(e["level"] == "debug" for e in entries), entries
    # The init stage is reported too (runc forwards nsexec's lines).
    assert len(entries) >= 5, entries


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_debug_lines_for_create_start_and_exec(runtime, bundle, tmp_path, fmt):
    cid = runtime.new_id("dbgx")
    runtime("create", "-b", str(bundle(["sleep", "1000"])), cid, check=True)
    runtime("start", cid, check=True)
    log = tmp_path / f"exec.{fmt}"
    proc = runtime(*log_args(log, fmt, debug=True), "exec", cid, "true")
    assert proc.returncode == 0, proc.stderr
    entries = parse_log(log.read_text(), fmt)
    assert entries and {e["level"] for e in entries} == {"debug"}, entries
    # Appended to, never truncated: a second call adds its own lines.
    proc = runtime(*log_args(log, fmt, debug=True), "exec", cid, "true")
    assert proc.returncode == 0, proc.stderr
    assert len(parse_log(log.read_text(), fmt)) > len(entries)


def test_debug_without_log_goes_to_stderr(runtime, bundle):
    proc = runtime("--debug", "run", "-b", str(bundle(["echo", "out"])), runtime.new_id("dbge"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == b"out\n"
    lines = proc.stderr.decode().splitlines()
    assert lines and all(parse_text_line(line)["level"] == "debug" for line in lines), lines


@pytest.mark.parametrize("debug", [False, True], ids=["plain", "debug"])
def test_error_is_the_last_error_entry(runtime, bundle, tmp_path, debug):
    """containerd shows the msg of the last error entry; without --debug the
    file holds that one line only (podman parses it as a single object)."""
    log = tmp_path / "log.json"
    cfg = bundle.config(["/no/such/program"])
    cid = runtime.new_id("err")
    proc = runtime(*log_args(log, "json", debug), "create", "-b", str(bundle(config=cfg)), cid)
    assert proc.returncode == 1
    entries = parse_log(log.read_text(), "json")
    errors = [e for e in entries if e["level"] == "error"]
    assert len(errors) == 1 and entries[-1] is errors[0], entries
    assert "/no/such/program" in errors[0]["msg"]
    if not debug:
        assert len(entries) == 1
        json.loads(log.read_text())  # what podman does with the whole file
    # stderr keeps exactly the one error line it had before.
    lines = [line for line in proc.stderr.decode().splitlines() if line.strip()]
    assert lines and "/no/such/program" in lines[-1]
    if not debug:
        assert len(lines) == 1, lines

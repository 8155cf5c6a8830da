"""Attack class 4: mount destinations raced through a shared volume.

CVEs: CVE-2021-30465 (a symlink exchanged into a bind-mount destination
makes the mount land outside the rootfs), CVE-2024-45310 (the same race
during the mkdir -p of a destination creates directories on the host),
and CVE-2019-19921 (the race used against /proc).

Container A shares a volume with container B and exchanges a directory on
the path of B's bind-mount destination with a symlink pointing at a host
canary directory (absolute, and as a relative climb), in a tight loop
(renameat2 RENAME_EXCHANGE).  B is created many times meanwhile, with
openat2 and with pyrunc-init's O_PATH walk (PYRUNC_INIT_NO_OPENAT2=1).
Canary: the host directory stays empty and nothing is mounted on it.
"""

from __future__ import annotations

import os
import time

import pytest

from tests.conftest import OTHER_RUNTIME, mounts_under, needs_root
from tests.security.conftest import config_for

pytestmark = needs_root

ROUNDS = int(os.environ.get("PYRUNC_RACE_ROUNDS", "20"))


@pytest.mark.parametrize("no_openat2", ["", "1"], ids=["openat2", "walk"])
@pytest.mark.parametrize("relative", [False, True], ids=["absolute", "relative"])
@pytest.mark.xfail(bool(OTHER_RUNTIME), strict=False,  # a race: runc 1.1.5 may win it
                   reason="runc 1.1.5 loses the bind destination race")
def test_bind_destination_race(runtime, bundle, private_rootfs, tmp_path, monkeypatch,
                               no_openat2, relative):
    if no_openat2:
        monkeypatch.setenv("PYRUNC_INIT_NO_OPENAT2", "1")
    else:
        monkeypatch.delenv("PYRUNC_INIT_NO_OPENAT2", raising=False)
    canary = tmp_path / "host-canary"
    canary.mkdir()
    vol = tmp_path / "volume"
    (vol / "a" / "b").mkdir(parents=True)
    target = ("../" * 12 + str(canary).lstrip("/")) if relative else str(canary)
    os.symlink(target, vol / "a" / "link")
    src = tmp_path / "bind-source"
    src.mkdir()
    (src / "marker").write_text("bind source")

    shared = {"destination": "/vol", "type": "bind", "source": str(vol), "options": ["rbind"]}
    racer = config_for(private_rootfs, ["/probe", "exchange", "120", "/vol/a/b", "/vol/a/link"])
    racer["mounts"].append(shared)
    racer_id = runtime.new_id("racer")
    runtime("run", "-d", "-b", str(bundle(config=racer)), racer_id, check=True)

    victim = config_for(private_rootfs, ["true"])
    victim["mounts"] += [shared, {"destination": "/vol/a/b/c/d", "type": "bind",
                                  "source": str(src), "options": ["bind"]}]
    victim_bundle = bundle(config=victim)
    outcomes = {"created": 0, "refused": 0}
    try:
        # At least ROUNDS, and on until one create got through (the racer can
        # win every one of the first ROUNDS), so both outcomes are exercised.
        for attempt in range(ROUNDS * 10):
            if attempt >= ROUNDS and outcomes["created"] > 0:
                break
            cid = runtime.new_id("victim")
            proc = runtime("create", "-b", str(victim_bundle), cid)
            if proc.returncode == 0:
                outcomes["created"] += 1
                pid = runtime.state(cid)["pid"]
                with open(f"/proc/{pid}/mountinfo") as f:
                    points = [line.split()[4] for line in f]
                # The bind landed on a path of the container (whatever the
                # race made of it), never on the canary as seen from the host.
                assert not [p for p in points if p.startswith(str(canary))
                            and not (private_rootfs / p.lstrip("/")).exists()], points
                runtime("delete", "--force", cid, check=True)
            else:
                outcomes["refused"] += 1
                assert b"Traceback" not in proc.stderr
            assert list(canary.iterdir()) == [], f"host canary changed after {outcomes}"
            assert mounts_under(str(canary)) == []
    finally:
        runtime("delete", "--force", racer_id)
    assert runtime("state", racer_id).returncode != 0
    assert list(canary.iterdir()) == []
    assert outcomes["created"] > 0, outcomes
    time.sleep(0)

"""One identifier check (smileloop_core.ids, fullmatch) for the device config, the org tree and central's ingest:
a trailing newline, a wildcard or a slash never passes anywhere."""

from __future__ import annotations

from pathlib import Path

import pytest

from central.errors import OrgError
from central.org import Org
from device import parse_config
from device.errors import ConfigError
from smileloop_core.ids import id_problem, is_id

BAD = ["", "exit\n", "exit\r", "a#b", "a+b", "a/b", "é", "x" * 65, "-lead", "a b", "\x00"]


@pytest.mark.parametrize("bad", BAD)
def test_bad_ids_are_refused_everywhere(bad: str, tmp_path: Path) -> None:
    assert not is_id(bad) and id_problem(bad, "site")
    with pytest.raises(ConfigError, match=r"device\.id"):
        parse_config({"device": {"id": bad, "site": "s", "location": "l"}}, str(tmp_path / "device.toml"), tmp_path)
    with pytest.raises(OrgError, match="not an identifier"):
        Org.from_dict({"sites": {bad: {}}})


def test_good_ids_pass() -> None:
    for good in ("store-042", "exit.north_2", "K1", "x" * 64):
        assert is_id(good) and id_problem(good, "site") is None

"""docs/ALERTS.md keeps up with the code: every rule, every parameter with its default, every command."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from central.rulebook import COMMON, RULES

DOC = (Path(__file__).parents[2] / "docs" / "ALERTS.md").read_text()


def _fmt(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


@pytest.mark.parametrize("name", sorted(RULES))
def test_every_rule_is_documented_with_its_defaults_and_an_example(name):
    assert f"### {name}" in DOC, f"docs/ALERTS.md has no section for {name}"
    row = next((line for line in DOC.splitlines() if line.startswith(f"| `{name}` |")), None)
    assert row is not None, f"{name} is missing from the rules table"
    for key, value in RULES[name].defaults.items():
        assert f"`{key}={_fmt(value)}`" in row, f"{name}.{key}={value} not in the table row"
    section = DOC.split(f"### {name}", 1)[1].split("\n### ", 1)[0]
    assert "```" in section, f"no example message for {name}"


def test_common_parameters_are_documented():
    for key, value in COMMON.items():
        assert re.search(rf"\| `{key}` \| `{_fmt(value)}` \|", DOC), key


@pytest.mark.parametrize("command", ["alerts list", "alerts ack", "alerts resolve", "alerts reopen", "alerts show",
                                     "org load", "org route", "rules set", "rules list", "rules load"])
def test_commands_are_documented(command):
    assert f"smileloop {command}" in DOC

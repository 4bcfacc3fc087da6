"""``smileloop alerts|org|rules`` through the root CLI: one line and exit 2 for a mistake, --json for machines."""

from __future__ import annotations

import json
import textwrap

import pytest
from click.testing import CliRunner

from central import rules
from central.rules import RuleBook
from central.store import CentralStore
from smileloop.cli import cli, main
from tests.central.conftest import TUESDAY_10, rating

ORG_TOML = """
name = "Acme"
[[contacts]]
name = "cx-team"
urls = ["json://127.0.0.1:9/cx"]

[sites.store-1]
timezone = "Europe/Stockholm"
[sites.store-1.hours]
mon = "08:00-20:00"
sun = "closed"
[[sites.store-1.contacts]]
name = "anna"
urls = ["json://127.0.0.1:9/anna"]
quiet = "22:00-07:00"
[sites.store-1.locations.exit]
devices = ["kiosk-1"]
"""


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "central.db"
    store = CentralStore(path)
    store.store_ratings("store-1", "kiosk-1", [rating(1, ts=TUESDAY_10, reason="waiting_time")], TUESDAY_10,
                        rules.rating_rule(RuleBook()))
    store.close()
    return str(path)


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def test_alert_lifecycle_from_the_command_line(db, capsys):
    listed = json.loads(run("alerts", "list", "--db", db, "--json").output)
    assert [a["kind"] for a in listed] == ["negative_rating"]
    short = listed[0]["id"][:8]
    assert run("alerts", "ack", short, "--db", db, "--by", "anna").output.strip() == f"{short} acknowledged by anna"
    assert main(["alerts", "resolve", short, "--db", db, "--by", "anna", "--root-cause", "", "--action", "x"]) == 2
    assert "root cause" in capsys.readouterr().err
    out = run("alerts", "resolve", short, "--db", db, "--by", "anna", "--root-cause", "one till",
              "--action", "opened a second till").output
    assert out.strip() == f"{short} resolved by anna"
    shown = json.loads(run("alerts", "show", short, "--db", db, "--json").output)
    assert [a["action"] for a in shown["audit"]] == ["opened", "acknowledged", "resolved"]
    assert "one till" in run("alerts", "show", short, "--db", db).output
    assert main(["alerts", "ack", "00000000", "--db", db, "--by", "anna"]) == 1
    assert capsys.readouterr().err.strip() == "error: no alert with id '00000000'"
    assert "reopened (1 time(s))" in run("alerts", "reopen", short, "--db", db, "--by", "cx", "--why", "back").output
    assert len(run("alerts", "list", "--db", db, "--state", "open").output.splitlines()) == 1


def test_org_load_show_and_route(db, tmp_path, capsys):
    path = tmp_path / "org.toml"
    path.write_text(ORG_TOML)
    assert "1 site(s)" in run("org", "load", path, "--db", db).output
    route = json.loads(run("org", "route", "store-1", "exit", "--db", db, "--json").output)
    assert [(r["scope"], r["contacts"]) for r in route] == [("site", ["anna"]), ("org", ["cx-team"])]
    shown = json.loads(run("org", "show", "--db", db, "--json").output)
    assert shown["sites"]["store-1"]["contacts"][0]["quiet"] == "22:00-07:00"
    assert "json://" not in json.dumps(shown)
    path.write_text(ORG_TOML.replace('quiet = "22:00-07:00"', 'quiet = "late"'))
    assert main(["org", "load", str(path), "--db", db]) == 2
    assert capsys.readouterr().err.strip() == "error: sites.store-1.contacts[0].quiet: 'late' is not HH:MM-HH:MM"


def test_rules_set_list_and_load(db, tmp_path, capsys):
    out = run("rules", "set", "store-1/exit", "negative_share", "threshold=0.4", "min_responses=6", "--db", db).output
    assert out.startswith("rules version 1")
    listed = json.loads(run("rules", "list", "--site", "store-1", "--location", "exit", "--db", db, "--json").output)
    assert (listed["negative_share"]["threshold"], listed["negative_share"]["min_responses"]) == (0.4, 6)
    assert json.loads(run("rules", "list", "--db", db, "--json").output)["negative_share"]["threshold"] == 0.5
    assert main(["rules", "set", "default", "burst", "taps=many", "--db", db]) == 2
    assert capsys.readouterr().err.strip() == "error: default.burst.taps: must be a number ≥ 0, got 'many'"
    path = tmp_path / "rules.toml"
    path.write_text(textwrap.dedent("""
        [default.negative_rating]
        cooldown = 600
        ["store-1".silence]
        min_silence = 7200
    """))
    assert "2 scope(s)" in run("rules", "load", path, "--db", db).output
    assert "cooldown=600" in run("rules", "list", "--db", db).output
    out = json.loads(run("rules", "set", "default", "burst", "taps=12", "--db", db, "--json").output)
    assert out == {"version": 3, "scope": "default", "rule": "burst", "settings": {"taps": 12}}


@pytest.mark.parametrize("group", ["alerts", "org", "rules"])
def test_every_subcommand_has_an_example(group):
    from smileloop.cli import LazyGroup

    command = LazyGroup().get_command(None, group)  # type: ignore[arg-type]
    for name in command.list_commands(None):  # type: ignore[union-attr]
        result = CliRunner().invoke(cli, [group, name, "--help"])
        assert result.exit_code == 0 and "Example" in result.output, f"smileloop {group} {name}"


def test_central_refuses_a_notification_url_apprise_cannot_use(tmp_path, capsys):
    assert main(["central", "--db", str(tmp_path / "c.db"), "--notify", "nosuchscheme://x"]) == 2
    assert "apprise does not understand the notification URL 'nosuchscheme://x'" in capsys.readouterr().err


def test_a_command_that_reads_a_store_does_not_create_one(tmp_path, capsys):
    missing = tmp_path / "no" / "such" / "central.db"
    for args in (["alerts", "list"], ["org", "show"], ["rules", "list"]):
        assert main([*args, "--db", str(missing)]) == 2
        assert f"no central store at {missing}" in capsys.readouterr().err
    assert not (tmp_path / "no").exists()
    assert main(["rules", "set", "default", "burst", "taps=12", "--db", str(missing)]) == 0  # set-up creates it
    assert missing.is_file()


def test_rule_changes_are_audited_with_who_made_them(tmp_path, capsys):
    db = str(tmp_path / "central.db")
    assert main(["rules", "set", "store-1", "burst", "taps=12", "--db", db, "--by", "anna"]) == 0
    store = CentralStore(db)
    [entry] = store.org_audit_entries()
    assert (entry["actor"], entry["action"], entry["target"]) == ("anna", "rules.set", "rules")
    [row] = store.query("SELECT before, after FROM org_audit")
    assert json.loads(row["before"]) == {} and json.loads(row["after"])["store-1"]["burst"]["taps"] == 12
    store.close()

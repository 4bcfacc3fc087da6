"""An alert's notification links straight to its page in the console when the org names ``console_url``; a
bad address is refused when the org is stored; without one, the command line is shown as before."""

from __future__ import annotations

import pytest

from central.errors import OrgError
from central.notify import texts_for
from central.org import Org
from central.org_admin import OrgAdmin
from tests.central.conftest import ORG
from tests.console.test_alert_pages import open_alert


def test_the_notification_links_to_the_alerts_page(console_store, clock, as_user):
    OrgAdmin(console_store, "test", clock=clock).replace({**ORG, "console_url": "https://feedback.example.com/"})
    alert = console_store.alert(open_alert(console_store, clock))
    org = Org.from_dict(console_store.document("org")[0])
    _title, body = texts_for(org, "store-1").alert(alert)
    link = f"https://feedback.example.com/alerts/{alert['id']}"
    assert link in body and "smileloop alerts ack" not in body
    path = link.removeprefix("https://feedback.example.com")
    assert as_user("anna").get(path).status_code == 200
    assert as_user("bo").get(path).status_code == 403


def test_without_a_console_url_the_command_is_shown(console_store, clock):
    alert = console_store.alert(open_alert(console_store, clock))
    _title, body = texts_for(Org.from_dict(ORG), "store-1").alert(alert)
    assert "smileloop alerts ack" in body and "/alerts/" not in body


@pytest.mark.parametrize("url", ["ftp://x", "javascript:alert(1)", "https://a b", 42, "https://" + "x" * 300])
def test_a_bad_console_url_is_refused(url):
    with pytest.raises(OrgError, match="console_url"):
        Org.from_dict({**ORG, "console_url": url})

from pathlib import Path

import pytest

from device.config import load_config
from device.errors import ConfigError

GOOD = """
[device]
id = "kiosk-7"
site = "store-042"
location = "exit-north"

[survey]
scale = "nps"
question = { en = "Would you recommend us?", sv = "Skulle du rekommendera oss?" }

[broker]
url = "mqtt://127.0.0.1:1883"

[storage]
path = "data/device.db"

[hours]
timezone = "Europe/Stockholm"
mon = "08:00-20:00"
sun = "closed"
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "device.toml"
    p.write_text(text)
    return p


def test_good_config_resolves_paths_next_to_the_file(tmp_path):
    cfg = load_config(write(tmp_path, GOOD))
    assert (cfg.device_id, cfg.site, cfg.location) == ("kiosk-7", "store-042", "exit-north")
    assert cfg.survey.scale == "nps"
    assert cfg.survey.question["sv"].startswith("Skulle")
    assert cfg.storage.path == tmp_path / "data" / "device.db"
    assert cfg.hours.weekly["sun"] == ()
    assert cfg.hours.weekly["mon"] == (("08:00", "20:00"),)


@pytest.mark.parametrize(("change", "key"), [
    (('scale = "nps"', 'scale = "stars"'), "survey.scale"),
    (('id = "kiosk-7"', 'id = "kiosk/7"'), "device.id"),
    (('id = "kiosk-7"\n', ''), "device.id"),
    (('url = "mqtt://127.0.0.1:1883"', 'url = "http://x"'), "broker.url"),
    (('mon = "08:00-20:00"', 'mon = "8-20"'), "hours.mon"),
    (('timezone = "Europe/Stockholm"', 'timezone = "Mars/Olympus"'), "hours.timezone"),
    (('[storage]', '[storage]\nretention_days = "long"'), "storage.retention_days"),
    (('[survey]', '[survey]\ncolour = "red"'), "survey.colour"),
    (('[storage]', '[stroage]'), "[stroage]"),
])
def test_each_mistake_names_the_file_and_the_key(tmp_path, change, key):
    path = write(tmp_path, GOOD.replace(*change))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert err.value.key == key
    assert str(err.value).startswith(f"{path}: {key}: ")


def test_toml_syntax_error_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="syntax"):
        load_config(write(tmp_path, "[device\nid = 1"))


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")


def test_missing_password_file_is_named(tmp_path):
    path = write(tmp_path, GOOD.replace('url = "mqtt://127.0.0.1:1883"',
                                        'url = "mqtt://127.0.0.1:1883"\npassword_file = "pw"'))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert err.value.key == "broker.password_file"
    assert "pw" in err.value.problem

"""Config: the documented example validates; bad configs fail with a message naming the field."""

import json

import pytest

from peertap.sidecar import config

CREATOR = "ab" * 32


def _write(tmp_path, data):
    p = tmp_path / "node.json"
    p.write_text(json.dumps(data) if not isinstance(data, str) else data)
    return p


def test_issue_example_config_is_valid(tmp_path):
    data = {
        "identity": {"key_file": "node.key"},
        "listen": ["/ip4/0.0.0.0/tcp/4001"],
        "bootstrap": [
            "/ip4/10.0.0.1/tcp/4001/p2p/12D3KooWAo3RwebzK8RxzgE1xXA6uMVLkvjhVoiepq59kuATtBmf"
        ],
        "api": {"listen": "127.0.0.1:9464"},
        "relay": {"enabled": True, "acl": {"mode": "open"}},
        "vlans": [
            {
                "label": "lab",
                "creator": CREATOR,
                "security": "open",
                "interface": {
                    "name": "pt-lab",
                    "mode": "tap",
                    "mtu": 1500,
                    "address": "10.250.0.1/24",
                },
            }
        ],
    }
    cfg, base = config.load(_write(tmp_path, data))
    assert cfg.vlans[0].interface.name == "pt-lab"
    assert base == tmp_path


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ("{not json", "not valid JSON"),
        ({"vlans": []}, "must enable relay"),
        ({"vlans": [{"label": "x", "creator": "zz"}]}, "vlans.0.creator"),
        ({"relay": {"enabled": True}, "bootstrap": ["/ip4/1.2.3.4/tcp/1"]}, "/p2p/"),
        ({"relay": {"enabled": True, "acl": {"mode": "list"}}}, "allow"),
        ({"relay": {"enabled": True}, "api": {"listen": "nope"}}, "HOST:PORT"),
        ({"relay": {"enabled": True}, "surprise": 1}, "surprise"),
        (
            {"vlans": [{"label": "x", "creator": CREATOR, "interface": {"name": "x" * 16}}]},
            "interface.name",
        ),
        (
            {"vlans": [{"label": "x", "creator": CREATOR, "interface": {"address": "10.0.0.1"}}]},
            "prefix",
        ),
    ],
)
def test_bad_configs_are_rejected_with_a_clear_message(tmp_path, data, needle):
    with pytest.raises(config.ConfigError) as info:
        config.load(_write(tmp_path, data))
    assert needle in str(info.value)


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(config.ConfigError, match="cannot read"):
        config.load(tmp_path / "absent.json")


def test_schema_lists_every_top_level_section():
    props = config.json_schema()["properties"]
    assert {"identity", "listen", "bootstrap", "api", "relay", "vlans"} <= set(props)


def test_vlan_control_is_off_by_default_and_vlans_start_joined(tmp_path):
    cfg, _ = config.load(_write(tmp_path, {"vlans": [{"label": "x", "creator": CREATOR}]}))
    assert cfg.api.vlan_control is False
    assert cfg.vlans[0].start == "joined"


@pytest.mark.parametrize("listen", ["127.0.0.1:9464", "127.0.0.2:80", "[::1]:9464", "localhost:1"])
def test_vlan_control_on_a_loopback_api_is_valid(tmp_path, listen):
    data = {
        "api": {"listen": listen, "vlan_control": True},
        "vlans": [
            {"label": "x", "creator": CREATOR, "start": "left", "interface": {"name": "px"}},
            {"label": "y", "creator": CREATOR, "security": "psk", "psk_file": "y.psk"},
        ],
    }
    cfg, _ = config.load(_write(tmp_path, data))
    assert cfg.api.vlan_control
    assert [v.start for v in cfg.vlans] == ["left", "joined"]


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (
            {"api": {"listen": "0.0.0.0:9464", "vlan_control": True}, "relay": {"enabled": True}},
            "api.vlan_control needs api.listen on a loopback address",
        ),
        (
            {"api": {"listen": "10.0.0.5:9464", "vlan_control": True}, "relay": {"enabled": True}},
            "'10.0.0.5:9464'",
        ),
        (
            {"api": {"listen": "", "vlan_control": True}, "relay": {"enabled": True}},
            "loopback",
        ),
        (
            {"vlans": [{"label": "x", "creator": CREATOR, "start": "left"}]},
            "api.vlan_control is false",
        ),
        (
            {
                "api": {"vlan_control": True},
                "vlans": [
                    {
                        "label": "x",
                        "creator": CREATOR,
                        "security": "mls",
                        "credential": "x.cred",
                        "start": "left",
                    }
                ],
            },
            "mls VLAN cannot be joined or left",
        ),
        (
            {"vlans": [{"label": "x", "creator": CREATOR, "start": "gone"}]},
            "vlans.0.start",
        ),
    ],
)
def test_bad_vlan_control_configs_are_rejected(tmp_path, data, needle):
    with pytest.raises(config.ConfigError) as info:
        config.load(_write(tmp_path, data))
    assert needle in str(info.value)

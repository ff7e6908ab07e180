"""The upstream setting's forms (scitex_orochi/hub/upstream.py) and the origin form."""

from __future__ import annotations

import pytest

from scitex_orochi.hub.config import Config, ConfigError
from scitex_orochi.hub.upstream import origin_of, parse_upstream

VAR = "SCITEX_OROCHI_DASHBOARD_WS_UPSTREAM"


@pytest.mark.parametrize(
    ("raw", "origin", "ws"),
    [
        ("ws://localhost:8559", "http://localhost:8559", "ws://localhost:8559/ws"),
        ("ws://localhost:8559/ws", "http://localhost:8559", "ws://localhost:8559/ws"),
        ("http://localhost:8559/", "http://localhost:8559", "ws://localhost:8559/ws"),
        ("https://orochi.example.com", "https://orochi.example.com", "wss://orochi.example.com/ws"),
        (
            "wss://orochi.example.com:8443",
            "https://orochi.example.com:8443",
            "wss://orochi.example.com:8443/ws",
        ),
        ("http://[::1]:8559", "http://[::1]:8559", "ws://[::1]:8559/ws"),
    ],
)
def test_forms_of_the_upstream(raw, origin, ws):
    upstream = parse_upstream(raw)
    assert (upstream.origin, upstream.ws) == (origin, ws)
    assert Config.load({VAR: raw}).http.dashboard_ws_upstream == raw.rstrip("/")


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("orochi.example.com", "base URL"),
        ("ftp://orochi.example.com", "base URL"),
        ("https://user:pw@orochi.example.com", "user"),
        ("https://orochi.example.com/orochi", "path"),
        ("https://orochi.example.com/?x=1", "query"),
        ("https://orochi.example.com:99999", "not a URL"),
        ("https://" + "a" * 2001, "longer"),
    ],
)
def test_bad_upstreams_stop_the_hub_naming_the_variable(raw, why):
    with pytest.raises(ConfigError) as err:
        Config.load({VAR: raw})
    assert VAR in str(err.value) and why in str(err.value)


def test_unset_upstream_stays_empty():
    assert Config.load({}).http.dashboard_ws_upstream == ""


def test_origins_in_the_form_browsers_send():
    assert origin_of("HTTP://Dev.Example:8560/") == "http://dev.example:8560"
    assert origin_of("https://a.example:443") == "https://a.example"
    assert origin_of("*") == "*" and origin_of("null") == "null"

"""The hub a dashboard follows (`SCITEX_OROCHI_DASHBOARD_WS_UPSTREAM`), and browser origins.

The setting names the upstream hub by the base URL of its dashboard port:
`https://orochi.example.com`, `http://host:8559`, or the same as a WebSocket URL
(`wss://orochi.example.com`, `ws://host:8559`, with or without the trailing `/ws`).
From it come the REST base (`http(s)://host[:port]`, also the upstream's origin) and
the observer socket (`ws(s)://host[:port]/ws`). No user, query, fragment or other
path: the dashboard's requests are absolute paths on that origin.

An origin is compared as browsers send it (`scheme://host[:port]`, lower-cased, no
trailing slash); `origin_of` puts a configured one in that form.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

HTTP_OF = {"http": "http", "https": "https", "ws": "http", "wss": "https"}
WS_OF = {"http": "ws", "https": "wss"}
DEFAULT_PORTS = {"http": 80, "https": 443}
MAX_URL_CHARS = 2000


@dataclass(frozen=True)
class Upstream:
    url: str  # the setting, as given (trailing slash dropped)
    origin: str  # http(s)://host[:port]: the REST base and the upstream's origin
    ws: str  # ws(s)://host[:port]/ws: the observer socket
    host: str  # host[:port], for people ("Showing live traffic of <host>")

    def as_json(self) -> dict[str, str]:
        return {"url": self.url, "origin": self.origin, "ws": self.ws, "host": self.host}


def parse_upstream(raw: str) -> Upstream:
    """The upstream of a non-empty setting; ValueError with the reason otherwise."""
    text = raw.strip().rstrip("/")
    if len(text) > MAX_URL_CHARS:
        raise ValueError(f"is longer than {MAX_URL_CHARS} characters")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise ValueError("is not a URL") from None
    scheme = HTTP_OF.get(parts.scheme.lower())
    if scheme is None or not parts.hostname:
        raise ValueError("is not a hub's base URL (http://, https://, ws:// or wss://host[:port])")
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not carry a user or password")
    if parts.query or parts.fragment or parts.path not in ("", "/ws"):
        raise ValueError("must be the hub's base URL, without a path (other than /ws) or query")
    hostname = parts.hostname.lower()
    if ":" in hostname:  # an IPv6 literal
        hostname = f"[{hostname}]"
    host = hostname if port in (None, DEFAULT_PORTS[scheme]) else f"{hostname}:{port}"
    origin = f"{scheme}://{host}"
    return Upstream(url=text, origin=origin, ws=f"{WS_OF[scheme]}://{host}/ws", host=host)


def check_upstream(raw: str) -> str:
    """The settings table's parser: the text, once it parses ('' stays unset)."""
    text = raw.strip().rstrip("/")
    if text:
        parse_upstream(text)
    return text


def origin_of(text: str) -> str:
    """A configured origin in the form browsers send (`*` and `null` as they are)."""
    text = text.strip().rstrip("/")
    if text in ("*", "null") or "://" not in text:
        return text
    scheme, _, rest = text.partition("://")
    scheme = scheme.lower()
    host = rest.lower()
    default = DEFAULT_PORTS.get(scheme)
    if default is not None and host.endswith(f":{default}"):
        host = host[: -len(f":{default}")]
    return f"{scheme}://{host}"

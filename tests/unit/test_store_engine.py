"""Database URLs and ISO timestamps as the store reads them, with literal inputs."""

from __future__ import annotations

import pytest

from scitex_orochi.hub.store import parse_iso_epoch
from scitex_orochi.hub.store_engine import normalize_url


def test_url_normalisation_and_iso_parsing():
    assert normalize_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalize_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalize_url("postgresql+psycopg://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalize_url("sqlite:////x.db") == "sqlite:////x.db"
    assert parse_iso_epoch("1970-01-01T00:00:10+00:00") == 10.0
    assert parse_iso_epoch("1970-01-01T00:00:10Z") == 10.0
    assert parse_iso_epoch("1970-01-01T00:00:10") == 10.0
    assert parse_iso_epoch("1970-01-01T01:00:10+01:00") == 10.0
    with pytest.raises(ValueError):
        parse_iso_epoch("not a time")

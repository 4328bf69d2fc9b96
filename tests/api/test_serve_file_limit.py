"""`cescale serve` fits its connection cap to the open-file limit."""

from __future__ import annotations

import resource

from service.cli import server


def fake_limits(monkeypatch, soft: int, hard: int, *, settable: bool = True) -> list:
    calls = []

    def setrlimit(which, limits):
        if not settable:
            raise ValueError("not permitted")
        calls.append(limits)

    monkeypatch.setattr(resource, "getrlimit", lambda which: (soft, hard))
    monkeypatch.setattr(resource, "setrlimit", setrlimit)
    return calls


def test_the_soft_limit_is_raised_to_fit_the_cap(monkeypatch):
    calls = fake_limits(monkeypatch, soft=1024, hard=65536)
    assert server._connections_within_file_limit(1000) == 1000
    assert calls == [(1000 + server._RESERVED_FDS, 65536)]


def test_a_cap_past_the_hard_limit_is_lowered_with_a_warning(monkeypatch, capsys):
    calls = fake_limits(monkeypatch, soft=256, hard=1024)
    assert server._connections_within_file_limit(5000) == 1024 - server._RESERVED_FDS
    assert calls == [(1024, 1024)]
    assert "CESCALE_MAX_CONNECTIONS=5000" in capsys.readouterr().err


def test_when_the_limit_cannot_be_raised_the_cap_fits_the_soft_one(monkeypatch, capsys):
    fake_limits(monkeypatch, soft=512, hard=65536, settable=False)
    assert server._connections_within_file_limit(1000) == 512 - server._RESERVED_FDS
    assert "open-file limit is 512" in capsys.readouterr().err


def test_a_limit_that_fits_is_left_alone(monkeypatch):
    calls = fake_limits(monkeypatch, soft=20000, hard=20000)
    assert server._connections_within_file_limit(1000) == 1000
    assert calls == []

"""Fixtures of the loop tests."""

from __future__ import annotations

import pytest

from service.database import Database
from service.platform.clock import VirtualClock
from service.platform.emulator.backend import EmulatorPlatform
from tests.conftest import truncate_all
from tests.control.helpers import START


@pytest.fixture
def loop_env(pg_engine, settings, tmp_path):
    """(database, emulator, virtual clock, settings) on the test Postgres, the emulator's
    results stored under ``tmp_path``; the tables emptied afterwards."""
    settings = settings.model_copy(update={"store_url": (tmp_path / "store").as_uri()})
    database = Database(settings, engine=pg_engine)
    clock = VirtualClock(START)
    platform = EmulatorPlatform(clock, seed=1, workers=2)
    yield database, platform, clock, settings
    platform.close()
    truncate_all(pg_engine)

"""Fixtures of the loop tests."""

from __future__ import annotations

import pytest

from service.database import Database
from service.platform.clock import VirtualClock
from service.platform.emulator.backend import EmulatorPlatform
from tests.conftest import truncate_all
from tests.control.helpers import START


@pytest.fixture
def loop_settings(settings, tmp_path):
    """The loop's settings: the emulator's results stored under ``tmp_path`` (a module may
    override this fixture to change more)."""
    return settings.model_copy(update={"store_url": (tmp_path / "store").as_uri()})


@pytest.fixture
def loop_env(pg_engine, loop_settings):
    """(database, emulator, virtual clock, settings) on the test Postgres; the tables emptied
    afterwards."""
    settings = loop_settings
    database = Database(settings, engine=pg_engine)
    clock = VirtualClock(START)
    platform = EmulatorPlatform(clock, seed=1, workers=2)
    yield database, platform, clock, settings
    platform.close()
    truncate_all(pg_engine)

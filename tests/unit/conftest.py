"""Unit-test setup shared by every module here."""

from collections.abc import Iterator

import pytest

# `activities` sets LITELLM_LOCAL_MODEL_COST_MAP, so litellm never fetches its model cost map
# from the network; it must be imported before any test module imports litellm.
import p2engine.activities  # noqa: F401
from p2engine.agents import scripted_provider
from p2engine.agents.config import ScriptedModelSettings


@pytest.fixture
def scripted() -> Iterator[None]:
    """The scripted provider registered with litellm on its default settings, and again
    after the test (which may have registered other settings)."""
    scripted_provider.register(ScriptedModelSettings())
    yield
    scripted_provider.register(ScriptedModelSettings())

"""Unit-test setup shared by every module here."""

# `activities` sets LITELLM_LOCAL_MODEL_COST_MAP, so litellm never fetches its model cost map
# from the network; it must be imported before any test module imports litellm.
import p2engine.activities  # noqa: F401

"""Every side effect: model calls, tools (and later ledger transfers and evaluations)."""

import os

# litellm fetches its model cost map from the network at import time unless told not to.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

"""Search attribute keys, registered on the server from deploy/temporal-dev.yaml."""

from temporalio.common import SearchAttributeKey

AGENT = SearchAttributeKey.for_keyword("P2eAgent")
ROLLOUT = SearchAttributeKey.for_keyword("P2eRollout")
VARIANT = SearchAttributeKey.for_keyword("P2eVariant")
BRANCH_OF = SearchAttributeKey.for_keyword("P2eBranchOf")
STATE = SearchAttributeKey.for_keyword("P2eState")
STEP = SearchAttributeKey.for_int("P2eStep")
SCORE = SearchAttributeKey.for_float("P2eScore")

ALL = (AGENT, ROLLOUT, VARIANT, BRANCH_OF, STATE, STEP, SCORE)

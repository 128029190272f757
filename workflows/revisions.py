"""What each revision of the conversation and rollout workflows changed in the commands
they issue.

A conversation or a rollout runs with the revision in its input: new ones get
CURRENT_REVISION (contract/models.py; a rollout's arms start with its revision), and
histories recorded before a revision replay the way they ran.
A revision in the input, unlike `workflow.patched`, costs no marker and no upsert of
TemporalChangeVersion. tests/golden keeps a history of each revision.
"""

# 1: search attributes upserted once per workflow task, with only what changed (P2eAgent
# comes with the start); before, one upsert per change, P2eAgent included.
UPSERT_ONCE_PER_TASK = 1

# 2: an evaluation whose evaluators are all quick (rules) runs as a local activity, inside
# the workflow task that asked for it (a marker, no task of its own); before, an activity.
QUICK_EVALUATIONS_LOCAL = 2

# 3: a conversation with evaluations upserts its memo as it closes, with the mean score per
# evaluator (SCORES_MEMO); before, no memo.
SCORES_IN_MEMO = 3

# 4: a cancel request that interrupts a model step, a tool call or a delegation ends the
# conversation cancelled (CancelWorkflowExecution); before, the interrupted call was read
# as a failed one and the conversation went on or finished with an error.
CANCEL_ENDS_CONVERSATION = 4

# 5: a rollout names each grid variant by what it varies (`model=scripted:a,temperature=0.2`,
# workflows/expansion.py), so its arms' keys and child workflow ids carry those names;
# before, grid variants were numbered v001, v002, ...
GRID_VARIANTS_NAMED = 5

# 6: a model or rule step names the agent config it runs by its artifact store ref
# (StepInput.config_ref): the first step of a conversation that runs a config sends it along
# and the worker stores it, later steps send the ref alone; the persona is rendered from the
# config's persona text. Before, every step carried its knobs inline and the worker read the
# persona's template from its disk.
CONFIG_BY_REF = 6

# 7: a side-effect-free built-in tool call runs as a local activity, inside the workflow task
# of the model step that asked for it (workflows/calls.py runs_local): a marker, no activity
# task and no workflow task of its own; before, every tool call was an activity.
LOCAL_QUICK_TOOLS = 7

# 8: a conversation carries a slim catalog and the whole one's ref in the artifact store
# (Catalog.for_agent): no agent specs and only its agent's persona text. A delegation, or an
# override to another persona, first reads what it needs by a local activity (READ_CATALOG,
# a marker); before, every conversation carried the whole catalog and read nothing.
CATALOG_BY_REF = 8

# 9: a built-in tool call alone in its model step stores its own ToolResult node
# (ToolInput.result_parent), so the next step's input carries no node for it; before, every
# result node went along with the next step to be stored there.
TOOL_STORES_RESULT = 9

"""s1-autotask: SentinelOne threats become Autotask PSA security tickets."""

import logging

# A library leaves logging to its application; without a handler of its own, a
# warning logged before the application configures logging would be printed by
# Python's last-resort handler, and printed again once Prefect's handlers exist.
logging.getLogger(__name__).addHandler(logging.NullHandler())

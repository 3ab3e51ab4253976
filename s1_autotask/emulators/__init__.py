"""Local stand-ins for the external systems, for the demo, development and tests.

`autotask` serves the Autotask PSA REST contract from an in-memory tenant seeded
from JSON (`s1-autotask emulator` on the command line).
"""

from s1_autotask.emulators.autotask import (
    AutotaskEmulator,
    RunningEmulator,
    create_app,
    load_seed,
    run,
    serve_in_thread,
)

__all__ = [
    "AutotaskEmulator",
    "RunningEmulator",
    "create_app",
    "load_seed",
    "run",
    "serve_in_thread",
]

"""snaptree's model: a pure, in-memory simulator of hypervisor snapshot trees.

No I/O, no processes, no import of the oracle.  ``Machine(get_profile("esx")).perform(op)`` is
the one step function; ``observe`` is what can be seen of the result.
"""

from .errors import ErrorKind, ModelError
from .machine import Machine, Snapshot
from .observe import observe
from .profiles import PROFILES, Profile, get_profile

__all__ = ["PROFILES", "ErrorKind", "Machine", "ModelError", "Profile", "Snapshot", "get_profile", "observe"]

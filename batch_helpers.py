"""Not part of the toolkit any more: its code moved to toolkit/ (cli, batch, storage).

Kept only because tests/unit/test_wire.py, owned by the emulator work, still imports these two names
from here. Delete this file once that test imports them from toolkit.batch.
"""

from toolkit.batch import MAX_NODES_METADATA, SUBMISSION_MARK

__all__ = ["MAX_NODES_METADATA", "SUBMISSION_MARK"]

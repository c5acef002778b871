"""check_task.py --node_logs downloads only the blobs of a node's upload whose path stays inside that node's
directory (toolkit/nodeaccess.py safe_name): a blob name from the container never writes outside OUTPUT_DIR."""

import pytest

from toolkit.nodeaccess import safe_name

PREFIX = "batch-0123456789ABCDEF/pool/node/4eef3d05-58e6-4416-8bbd-ba380a53431f/"


@pytest.mark.parametrize("name, safe", [
    (PREFIX + "agent-logs/agent.log", True),
    (PREFIX + "workitems/job/job-1/task/1/stdout.txt", True),
    (PREFIX + "../../escape.txt", False),
    (PREFIX + "workitems/./x", False),
    (PREFIX + "a//b", False),
    (PREFIX, False),
    ("other/" + PREFIX + "agent.log", False),
])
def test_only_names_inside_the_upload_are_downloaded(name, safe):
    assert safe_name(name, PREFIX) is safe

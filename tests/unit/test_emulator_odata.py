"""$filter, $select and paging of the Batch emulator's lists."""


import pytest

from batch_emulator.api.odata import compile_filter, decode_skiptoken, encode_skiptoken, page, select_properties
from batch_emulator.service.errors import BatchServiceError

TASK_PROPS = ("id", "state", "executionInfo/exitCode", "executionInfo/result", "creationTime")
TASKS = [
    {"id": "t0", "state": "completed", "creationTime": "2025-01-01T00:00:00.1234567Z",
     "executionInfo": {"exitCode": 0, "result": "success"}},
    {"id": "t1", "state": "completed", "creationTime": "2025-01-02T00:00:00Z",
     "executionInfo": {"exitCode": 3, "result": "failure"}},
    {"id": "mpi-1", "state": "running", "creationTime": "2025-01-03T00:00:00Z", "executionInfo": {}},
    {"id": "MPI-2", "state": "active", "creationTime": "2025-01-04T00:00:00Z", "executionInfo": {}},
]


def ids(text):
    predicate = compile_filter(text, TASK_PROPS)
    return [t["id"] for t in TASKS if predicate(t)]


@pytest.mark.parametrize("text,expected", [
    (None, ["t0", "t1", "mpi-1", "MPI-2"]),
    ("state eq 'completed'", ["t0", "t1"]),
    ("state ne 'completed'", ["mpi-1", "MPI-2"]),
    ("STATE eq 'Completed'", ["t0", "t1"]),
    ("executionInfo/exitCode gt 0", ["t1"]),
    ("executionInfo/exitCode eq 0 or executionInfo/result eq 'failure'", ["t0", "t1"]),
    ("state eq 'completed' and executionInfo/exitCode le 0", ["t0"]),
    ("(state eq 'running' or state eq 'active') and startswith(id, 'mpi')", ["mpi-1", "MPI-2"]),
    ("not (state eq 'completed')", ["mpi-1", "MPI-2"]),
    ("creationTime ge datetime'2025-01-02T00:00:00Z'", ["t1", "mpi-1", "MPI-2"]),
    ("creationTime lt '2025-01-01T00:00:01Z'", ["t0"]),
    ("executionInfo/exitCode eq null", ["mpi-1", "MPI-2"]),
    ("id eq 'it''s'", []),
])
def test_filters_select_the_right_items(text, expected):
    assert ids(text) == expected


@pytest.mark.parametrize("text", [
    "vmSize eq 'x'",                # a property this list does not filter on
    "state eq",                     # no value
    "state like 'x'",               # unknown operator
    "(state eq 'x'",                # unbalanced
    "state eq 'x' trailing",
    "startswith(id, 3)",
    "state eq 'x' # comment",
])
def test_unsupported_or_malformed_filters_give_400(text):
    with pytest.raises(BatchServiceError) as caught:
        compile_filter(text, TASK_PROPS)
    assert (caught.value.status, caught.value.code) == (400, "InvalidQueryParameterValue")


def test_select_keeps_listed_top_level_properties():
    assert select_properties(TASKS[1], "id, STATE") == {"id": "t1", "state": "completed"}
    assert select_properties(TASKS[1], None) is TASKS[1]


def test_paging_walks_every_item_once():
    items, seen, query = list(range(7)), [], {"maxresults": "3"}
    while True:
        chunk, token = page(items, query)
        seen += chunk
        if not token:
            break
        query = {"maxresults": "3", "$skiptoken": token}
    assert seen == items


def test_skiptoken_round_trips_and_rejects_garbage():
    assert decode_skiptoken(encode_skiptoken(42)) == 42
    with pytest.raises(BatchServiceError) as caught:
        decode_skiptoken("not-a-token")
    assert caught.value.status == 400


@pytest.mark.parametrize("value,code", [("0", "InvalidQueryParameterValue"), ("-5", "InvalidQueryParameterValue"),
                                        ("1001", "OutOfRangeQueryParameterValue"),
                                        ("ten", "InvalidQueryParameterValue")])
def test_maxresults_outside_1_to_1000_gives_400(value, code):
    with pytest.raises(BatchServiceError) as caught:
        page([1, 2], {"maxresults": value})
    assert (caught.value.status, caught.value.code) == (400, code)

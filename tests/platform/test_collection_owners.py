"""Each MongoDB collection has one owner: the module that holds every write to it. A write from
anywhere else fails this test, so a newcomer finds every way a document changes in one file."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
WRITES = {"insert_one", "insert_many", "update_one", "update_many", "replace_one", "delete_one", "delete_many",
          "find_one_and_update", "find_one_and_replace", "find_one_and_delete", "bulk_write"}
OWNERS = {
    "jobs": {"shared/jobs/service.py"},
    "voices": {"shared/pool/records.py"},
    "recordings": {"shared/recordings/service.py"},
    "charges": {"shared/quota/service.py"},
    "activation_codes": {"shared/users/codes.py"},
    "users": {"shared/users/repository.py"},
}


def collection_writes(path: Path) -> list[tuple[str, int]]:
    """(collection, line) of each `...["name"].<write>(...)` and `...collection(db).<write>`."""
    found = []
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in WRITES):
            continue
        target = node.func.value
        if isinstance(target, ast.Subscript) and isinstance(target.slice, ast.Constant) \
                and isinstance(target.slice.value, str):
            found.append((target.slice.value, node.lineno))
    return found


def test_every_collection_is_written_only_by_its_owner():
    offenders = []
    for path in (REPO / "shared").rglob("*.py"):
        rel = str(path.relative_to(REPO))
        for collection, line in collection_writes(path):
            if collection in OWNERS and rel not in OWNERS[collection]:
                offenders.append(f"{rel}:{line} writes {collection}")
    for folder in ("api", "workers", "cli"):
        for path in (REPO / folder).rglob("*.py"):
            offenders += [f"{path.relative_to(REPO)}:{line} writes {collection}"
                          for collection, line in collection_writes(path)]
    assert offenders == [], "\n".join(offenders)


def test_the_scan_sees_writes(tmp_path):
    sample = tmp_path / "x.py"
    sample.write_text('db["jobs"].update_one({}, {})\nself.db["voices"].find_one_and_update({}, {})\n'
                      'db["users"].find_one({})\n')
    assert collection_writes(sample) == [("jobs", 1), ("voices", 2)]

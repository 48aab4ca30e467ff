"""The repository stands alone: a person who clones it has nothing beside it.

No tracked file may read, name or cite a path above the repository root, nor a design document
that is not in the repository; the project's own docs say what the code relies on.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
#: a relative path that climbs: "../x", "../../x", "..\\x"
CLIMB = re.compile(r"(?<![\w.])((?:\.\.[/\\])+)([\w.\-/\\]*)")
#: documents that live outside the repository (built from parts so this file does not match)
OUTSIDE_DOCS = re.compile("DESIGN" + r"\.md|" + "seeds" + r"/")
HERE = Path(__file__).resolve()


def tracked_files() -> list[Path]:
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
        return [REPO / name for name in out.decode().split("\0") if name]
    except (OSError, subprocess.CalledProcessError):  # an export without .git: walk the tree
        skip = {".git", ".venv", ".data", "out", "__pycache__", "node_modules"}
        found = []
        for root, dirs, files in os.walk(REPO):
            dirs[:] = [d for d in dirs if d not in skip]
            found += [Path(root) / f for f in files]
        return found


def text_of(path: Path) -> str | None:
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if b"\0" in data[:4096]:
        return None  # binary (audio, images)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def escapes(base: Path, relative: str) -> bool:
    target = os.path.normpath(os.path.join(base, relative.replace("\\", "/")))
    return not (target == str(REPO) or target.startswith(str(REPO) + os.sep))


def references_above_root(path: Path, text: str) -> list[str]:
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        for match in CLIMB.finditer(line):
            climb = match.group(0)
            # a Markdown link resolves from its own folder; a path in code or a command from the
            # repository root (where make, pytest and the CLI run) or from the file's folder
            bases = [path.parent] if path.suffix == ".md" else [path.parent, REPO]
            if any(escapes(base, climb) for base in bases):
                found.append(f"{path.relative_to(REPO)}:{number}: {climb}")
        if OUTSIDE_DOCS.search(line):
            found.append(f"{path.relative_to(REPO)}:{number}: cites a document outside the repository")
    return found


def test_no_tracked_file_refers_above_the_repository_root():
    problems = []
    for path in tracked_files():
        if path == HERE:
            continue
        text = text_of(path)
        if text is not None:
            problems += references_above_root(path, text)
    assert not problems, "paths outside the repository:\n" + "\n".join(problems)


def test_the_check_catches_what_it_is_for(tmp_path):
    # the scan above passing means nothing unless it would have failed on the defects it guards
    inside = REPO / "tests" / "conftest.py"
    assert references_above_root(inside, 'FIXTURES = "../shared/fixtures/voice"')
    assert references_above_root(REPO / "Makefile", "demo: --sample ../shared/x.mp3")
    assert references_above_root(REPO / "README.md", "[design](../shared/" + "DESIGN" + ".md)")
    assert references_above_root(REPO / "shared" / "x.py", "# see " + "DESIGN" + ".md section 4")
    # a link from docs/ to the README climbs but stays inside
    assert not references_above_root(REPO / "docs" / "ARCHITECTURE.md", "[reliability](../README.md)")


def test_the_voice_sample_is_in_the_repository():
    sample = REPO / "fixtures" / "voice" / "sample_en_49s.mp3"
    assert sample.stat().st_size > 100_000
    sources = (REPO / "fixtures" / "voice" / "SOURCES.md").read_text()
    assert "public domain" in sources.lower()

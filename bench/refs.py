"""This server as it was at a git ref, checked out for one run: the before of a before/after.

``--baseline-ref REF`` measures the code at REF next to the working tree in the same run,
on the same machine, so a change's cost is read from one table instead of from two runs
hours apart. The ref is checked out with ``git worktree add --detach`` into a temporary
directory and removed when the run ends. Its server is the same ``chatbot`` console script
of the same virtual environment, started with ``PYTHONPATH`` (and the working directory) at
that checkout: the interpreter finds the old ``chatbot`` and ``server`` packages there
before the editable install of the working tree, whose import hook comes after the path.
Dependencies are therefore today's; a ref that needs other packages cannot be measured so.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.procs import ROOT


def _git(*args: str) -> str:
    done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"git {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout.strip()


def short_commit(ref: str) -> str:
    """The abbreviated commit a ref names (``SystemExit`` when it names none)."""
    return _git("rev-parse", "--short=7", "--verify", f"{ref}^{{commit}}")


@contextmanager
def checkout(ref: str) -> Iterator[tuple[str, Path]]:
    """A detached worktree of ``ref`` for the duration of the block: (short commit, path)."""
    commit = short_commit(ref)
    parent = Path(tempfile.mkdtemp(prefix=f"bench-ref-{commit}-"))
    tree = parent / "tree"
    _git("worktree", "add", "--detach", "--quiet", str(tree), commit)
    try:
        yield commit, tree
    finally:
        removed = subprocess.run(
            ["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, capture_output=True
        )
        shutil.rmtree(parent, ignore_errors=True)
        if removed.returncode != 0:  # the directory is gone: drop its stale registration
            subprocess.run(["git", "worktree", "prune"], cwd=ROOT, capture_output=True)

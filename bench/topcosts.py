"""Top costs from a py-spy ``--format raw`` profile (collapsed stacks).

Prints the share of samples by package (inclusive: the package is anywhere on
the stack; self: the innermost Python frame is in it) and the top functions by
inclusive and self share. Run: ``python -m bench.topcosts bench/profiles/naive.txt``
"""

from __future__ import annotations

import functools
import re
import sys
import sysconfig
from collections import Counter
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


_SITE = Path(sysconfig.get_paths()["purelib"])


@functools.cache
def _where(path: str) -> str:
    """A package name for a source path as py-spy prints it (often shortened)."""
    if not path:
        return "?"
    if path.startswith("<frozen"):
        return "stdlib"
    m = re.search(r"(?:^|/)(bench|server|chatbot)/", path)
    if m and not path.startswith(("burr/", "opentelemetry/")):
        return m.group(1)
    rel = re.sub(r"^.*?/site-packages/", "", path)
    first = rel.split("/", 1)[0].removesuffix(".py")
    if rel == path and first in sys.stdlib_module_names:
        return "stdlib"
    if (_SITE / rel).exists() or rel != path:
        return first
    # py-spy shortens some paths (e.g. opentelemetry/instrumentation/openai/... to openai/...)
    found = [p for p in _SITE.rglob(Path(rel).name) if p.as_posix().endswith("/" + rel)]
    if found:
        return found[0].relative_to(_SITE).parts[0]
    return first


def parse(text: str) -> list[tuple[list[tuple[str, str]], int]]:
    stacks = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        stack, _, count = line.rpartition(" ")
        frames = []
        for f in stack.split(";"):
            m = _FRAME.match(f)
            if m:
                frames.append((m.group("func"), m.group("file")))
            else:
                frames.append((f, ""))
        stacks.append((frames, int(count)))
    return stacks


def summarize(text: str, top: int = 15) -> str:
    stacks = parse(text)
    total = sum(c for _, c in stacks) or 1
    pkg_incl: Counter[str] = Counter()
    pkg_self: Counter[str] = Counter()
    fn_incl: Counter[str] = Counter()
    fn_self: Counter[str] = Counter()
    for frames, count in stacks:
        # drop process/thread pseudo-frames py-spy adds with --subprocesses
        frames = [f for f in frames if f[1]]
        if not frames:
            continue
        pkgs = {_where(file) for _, file in frames}
        for p in pkgs:
            pkg_incl[p] += count
        fns = {f"{func} ({file})" for func, file in frames}
        for fn in fns:
            fn_incl[fn] += count
        func, file = frames[-1]
        pkg_self[_where(file)] += count
        fn_self[f"{func} ({file})"] += count

    def block(title: str, c: Counter[str]) -> list[str]:
        # frames on (nearly) every stack, the interpreter and server entry points, say nothing
        rows = [f"{title}:"]
        shown = [(k, n) for k, n in c.most_common() if n < 0.98 * total][:top]
        rows += [f"  {100 * n / total:5.1f}%  {k}" for k, n in shown]
        return rows

    out = [f"{total} samples"]
    out += block("package, inclusive", pkg_incl)
    out += block("package, self", pkg_self)
    out += block("function, inclusive", fn_incl)
    out += block("function, self", fn_self)
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    for name in args:
        print(f"== {name}")
        print(summarize(Path(name).read_text()))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Structure checks of the routing core (crates/f3dx-router-core/src).

Two rules, each a reported violation and a non-zero exit:

* No import cycle between files. An edge goes from a file to every other
  file a path in it names: `use crate::...`, `use super::...`,
  `use self::...`, a `use` of a child module (`use keys::...`), and the
  same paths written inline (`crate::budget::estimate_tokens(...)`). A
  name re-exported by a module (`pub use inner::Thing`) leads on to the
  file that defines it. Test code is left out: `#[cfg(test)]` items and
  files that are only test modules.
* No file over MAX_LOC lines of code (blank lines, comments and test
  code not counted) unless a line near its top says why, starting with
  `// size:` (e.g. `// size: one table of every provider's fields`).

Usage: python3 scripts/check_structure.py [--src DIR] [--verbose]
Standard library only.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

MAX_LOC = 700
SIZE_REASON = re.compile(r"^\s*//\s*size:\s*\S")
# Lines at a file's top searched for a size reason.
REASON_WINDOW = 40
IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
INLINE_PATH = re.compile(rf"\b(crate|super|self)((?:\s*::\s*{IDENT})+)")
MOD_DECL = re.compile(rf"^\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+({IDENT})\s*;", re.M)
USE_STMT = re.compile(r"\buse\s+([^;]*);", re.S)
CFG_TEST = re.compile(r"#\s*\[\s*cfg\s*\(\s*test\s*\)\s*\]")
# The `mod x;` a `#[cfg(test)]` stands before: a file that is only tests.
TEST_MOD_DECL = re.compile(rf"\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+({IDENT})\s*;")


@dataclass
class Module:
    """One file of the crate and what it says about names."""

    path: Path
    segments: tuple[str, ...]  # ("config", "keys"); () for lib.rs
    code: str = ""  # comments, strings and test code removed
    children: set[str] = field(default_factory=set)
    test_children: set[str] = field(default_factory=set)
    # name -> absolute path it imports (for following re-exports)
    imports: dict[str, tuple[str, ...]] = field(default_factory=dict)
    globs: list[tuple[str, ...]] = field(default_factory=list)
    paths: list[tuple[str, ...]] = field(default_factory=list)  # absolute paths named


def strip_comments_and_strings(text: str) -> str:
    """Blank out comments, string and char literals (keeping line breaks)."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            i = j
            continue
        if text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append("\n" * text.count("\n", i, j))
            i = j
            continue
        raw = re.match(r'b?r(#*)"', text[i : i + 260])
        if raw and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            end = '"' + raw.group(1)
            j = text.find(end, i + raw.end())
            j = n if j < 0 else j + len(end)
            out.append('""' + "\n" * text.count("\n", i, j))
            i = j
            continue
        if c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append('""' + "\n" * text.count("\n", i, j))
            i = j + 1
            continue
        if c == "'":
            # A char literal ('a', '\n', '\u{1F600}'), not a lifetime ('a).
            m = re.match(r"'(?:\\u\{[0-9a-fA-F]+\}|\\.|[^\\'])'", text[i : i + 12])
            if m:
                out.append("' '")
                i += m.end()
                continue
        out.append(c)
        i += 1
    return "".join(out)


def matching_brace(code: str, open_at: int) -> int:
    depth = 0
    for j in range(open_at, len(code)):
        if code[j] == "{":
            depth += 1
        elif code[j] == "}":
            depth -= 1
            if depth == 0:
                return j
    return len(code) - 1


def strip_test_code(code: str) -> str:
    """Blank out every `#[cfg(test)]` item (a block, or a line ending in `;`)."""
    while True:
        m = CFG_TEST.search(code)
        if not m:
            return code
        j = m.end()
        while j < len(code) and code[j] not in "{;":
            j += 1
        end = matching_brace(code, j) if j < len(code) and code[j] == "{" else j
        # A `mod x;` declaration is remembered by the caller before this runs.
        cut = code[m.start() : end + 1]
        code = code[: m.start()] + "\n" * cut.count("\n") + code[end + 1 :]


def expand_use_tree(tree: str) -> list[tuple[list[str], str | None]]:
    """`a::{b, c::d as e, f::*}` -> [(path segments, alias or None)]."""
    tree = re.sub(r"\s+", "", tree)

    def split_top(s: str) -> list[str]:
        parts, depth, start = [], 0, 0
        for k, ch in enumerate(s):
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
            elif ch == "," and depth == 0:
                parts.append(s[start:k])
                start = k + 1
        parts.append(s[start:])
        return [p for p in parts if p]

    def walk(prefix: list[str], s: str) -> list[tuple[list[str], str | None]]:
        brace = s.find("{")
        if brace >= 0:
            head = [p for p in s[:brace].split("::") if p]
            inner = s[brace + 1 : s.rfind("}")]
            result = []
            for part in split_top(inner):
                result.extend(walk(prefix + head, part))
            return result
        alias = None
        if "as" in s and re.search(r"[A-Za-z0-9_]as[A-Za-z_]", s):
            s, alias = s.rsplit("as", 1)
        segs = [p for p in s.split("::") if p]
        if segs == ["self"]:
            segs = []
        return [(prefix + segs, alias)]

    return walk([], tree)


def load(src: Path) -> dict[tuple[str, ...], Module]:
    modules: dict[tuple[str, ...], Module] = {}
    for path in sorted(src.rglob("*.rs")):
        rel = path.relative_to(src).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] in ("mod", "lib") or parts == ["main"]:
            parts = parts[:-1]
        modules[tuple(parts)] = Module(path=path, segments=tuple(parts))
    for m in modules.values():
        raw = strip_comments_and_strings(m.path.read_text(encoding="utf-8"))
        for t in CFG_TEST.finditer(raw):
            decl = TEST_MOD_DECL.match(raw, t.end())
            if decl:
                m.test_children.add(decl.group(1))
        m.code = strip_test_code(raw)
        m.children = set(MOD_DECL.findall(m.code))
    return modules


def is_test_only(seg: tuple[str, ...], modules: dict[tuple[str, ...], Module]) -> bool:
    for k in range(1, len(seg) + 1):
        parent = modules.get(seg[: k - 1])
        if parent and seg[k - 1] in parent.test_children:
            return True
    return False


def absolute(m: Module, segs: list[str]) -> tuple[str, ...] | None:
    """Resolve a path as written in module `m` to an absolute one."""
    if not segs:
        return None
    here = list(m.segments)
    head, rest = segs[0], segs[1:]
    if head == "crate":
        base: list[str] = []
    elif head == "self":
        base = here
    elif head == "super":
        base = here[:-1]
        while rest and rest[0] == "super":
            base, rest = base[:-1], rest[1:]
    elif head in m.children:
        base, rest = here + [head], rest
    else:
        return None  # an external crate, std, or a local name
    return tuple(base + rest)


def scan(m: Module) -> None:
    for use in USE_STMT.finditer(m.code):
        for segs, alias in expand_use_tree(use.group(1)):
            if segs and segs[-1] == "*":
                target = absolute(m, segs[:-1] or ["self"])
                if target is not None:
                    m.globs.append(target)
                    m.paths.append(target)
                continue
            target = absolute(m, segs)
            if target is None:
                continue
            m.paths.append(target)
            if segs:
                m.imports[alias or segs[-1]] = target
    for inline in INLINE_PATH.finditer(m.code):
        segs = [inline.group(1)] + [s.strip() for s in inline.group(2).split("::") if s.strip()]
        target = absolute(m, segs)
        if target is not None:
            m.paths.append(target)


def file_of(target: tuple[str, ...], modules: dict[tuple[str, ...], Module], depth: int = 0) -> Module | None:
    """The file that defines what an absolute path names."""
    for k in range(len(target), -1, -1):
        mod = modules.get(target[:k])
        if mod is None:
            continue
        rest = target[k:]
        if rest and depth < 8 and rest[0] in mod.imports:
            return file_of(mod.imports[rest[0]] + rest[1:], modules, depth + 1)
        return mod
    return None


def dependency_graph(modules: dict[tuple[str, ...], Module]) -> dict[Path, set[Path]]:
    graph: dict[Path, set[Path]] = {}
    for m in modules.values():
        if is_test_only(m.segments, modules):
            continue
        edges = graph.setdefault(m.path, set())
        for target in m.paths:
            dep = file_of(target, modules)
            if dep is not None and dep.path != m.path and not is_test_only(dep.segments, modules):
                edges.add(dep.path)
    return graph


def cycles(graph: dict[Path, set[Path]]) -> list[list[Path]]:
    """Strongly connected components of more than one file (Tarjan)."""
    index: dict[Path, int] = {}
    low: dict[Path, int] = {}
    stack: list[Path] = []
    on_stack: set[Path] = set()
    found: list[list[Path]] = []
    counter = [0]

    def visit(v: Path) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    sys.setrecursionlimit(10_000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def lines_of_code(m: Module) -> int:
    return sum(1 for line in m.code.splitlines() if line.strip())


def has_size_reason(path: Path) -> bool:
    head = path.read_text(encoding="utf-8").splitlines()[:REASON_WINDOW]
    return any(SIZE_REASON.match(line) for line in head)


def main(argv: list[str] | None = None) -> int:
    root = Path(__file__).resolve().parent.parent
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--src", type=Path, default=root / "crates/f3dx-router-core/src")
    parser.add_argument("--verbose", action="store_true", help="list every file's size and edges")
    args = parser.parse_args(argv)
    src: Path = args.src.resolve()
    modules = load(src)
    for m in modules.values():
        scan(m)
    graph = dependency_graph(modules)

    def rel(p: Path) -> str:
        return str(p.relative_to(src))

    problems = 0
    for comp in cycles(graph):
        problems += 1
        members = set(comp)
        links = [
            f"{rel(a)} -> {rel(b)}"
            for a in comp
            for b in sorted(graph[a])
            if b in members
        ]
        print(f"import cycle between {', '.join(rel(p) for p in comp)}: " + "; ".join(links))
    for m in sorted(modules.values(), key=lambda m: m.path):
        if is_test_only(m.segments, modules):
            continue
        loc = lines_of_code(m)
        if args.verbose:
            deps = ", ".join(rel(p) for p in sorted(graph.get(m.path, ())))
            print(f"{loc:5d}  {rel(m.path)}  -> {deps}")
        if loc > MAX_LOC and not has_size_reason(m.path):
            problems += 1
            print(
                f"{rel(m.path)}: {loc} lines of code (over {MAX_LOC}); split it, or say why "
                "in a `// size: ...` line at its top"
            )
    if problems:
        print(f"check_structure: {problems} violation(s)")
        return 1
    print(f"check_structure: ok ({len(graph)} files, no cycle, none over {MAX_LOC} lines of code)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

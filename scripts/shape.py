#!/usr/bin/env python3
"""The shape of `src/` in figures (issue 12): import cycles between files, functions longer
than 80 lines, files longer than 800 lines.

    python3 scripts/shape.py            report
    python3 scripts/shape.py --json     the same as JSON (tests/architecture.rs reads it)

Imports are read from the text: every `crate::a::b` path (with `use crate::{a, b::{c}}` groups
expanded) and every `super::` path, resolved to the longest prefix that is a file. A cycle is a
strongly connected set of two or more files; a module and its own child (`x.rs` and
`x/y.rs`, `x/mod.rs` and `x/y.rs`) importing each other is allowed, as the issue allows it.
Functions are counted from their `fn` line to the line of their closing brace (tests and
`#[cfg(test)]` modules excluded).
"""
import json
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")
MAX_FN = 80
MAX_FILE = 800


def module_of(rel):
    """src-relative file path -> module path tuple."""
    parts = rel[:-3].split("/")
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return tuple(parts)


def files():
    out = {}
    for dirpath, _, names in os.walk(ROOT):
        for n in names:
            if n.endswith(".rs"):
                rel = os.path.relpath(os.path.join(dirpath, n), ROOT)
                if rel.startswith("bin/"):
                    continue
                out[module_of(rel)] = rel
    return out


def expand_use(text):
    """Expands `crate::{a, b::{c, d}}` groups into flat paths."""
    out = []

    def walk(prefix, body):
        depth, start, items = 0, 0, []
        for i, ch in enumerate(body):
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
            elif ch == "," and depth == 0:
                items.append(body[start:i])
                start = i + 1
        items.append(body[start:])
        for it in items:
            it = it.strip()
            if not it:
                continue
            m = re.match(r"^([\w:]*?)::\{(.*)\}$", it, re.S)
            if m:
                walk(prefix + m.group(1).split("::"), m.group(2))
            else:
                out.append(prefix + it.split(" as ")[0].strip().split("::"))

    for m in re.finditer(r"\buse\s+(crate|super)::\{(.*?)\};", text, re.S):
        walk([m.group(1)], m.group(2))
    return out


def raw_start(text, i):
    """Whether `text[i]` opens a raw string literal (`r"`, `r#"`, `br#"`), not ends a name."""
    if not re.match(r'r#*"', text[i : i + 260]):
        return False
    before = text[max(0, i - 2) : i]
    if before.endswith("b"):
        before = before[:-1]
    return not re.search(r"\w$", before)


def code_only(text):
    """The code alone: comments dropped, the contents of string and character literals blanked
    (a `}` in `"https://x/{y}"`, or a `//` inside a string, is not code). Newlines are kept, so
    line numbers hold."""
    out, i, n = [], 0, len(text)
    while i < n:
        ch = text[i]
        nxt = text[i + 1] if i + 1 < n else ""
        if ch == "/" and nxt == "/":
            while i < n and text[i] != "\n":
                i += 1
        elif ch == "/" and nxt == "*":
            depth, i = 1, i + 2
            while i < n and depth:
                if text.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif text.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    if text[i] == "\n":
                        out.append("\n")
                    i += 1
        elif ch == "r" and raw_start(text, i):
            m = re.match(r'r(#*)"', text[i:])
            end = text.find('"' + m.group(1), i + len(m.group(0)))
            end = n if end < 0 else end + 1 + len(m.group(1))
            out.append('""' + "\n" * text.count("\n", i, end))
            i = end
        elif ch == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append('""' + "\n" * text.count("\n", i, j))
            i = j + 1
        elif ch == "'" and (nxt == "\\" or text[i + 2 : i + 3] == "'"):
            j = i + 3 if nxt == "\\" else i + 2
            while j < n and text[j] != "'":
                j += 1
            out.append("' '")
            i = j + 1
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def strip_tests(text):
    """Drops `#[cfg(test)] mod x { ... }` bodies (brace-matched)."""
    out, i = [], 0
    for m in re.finditer(r"#\[cfg\(test\)\]\s*mod\s+\w+\s*\{", text):
        if m.start() < i:
            continue
        out.append(text[i : m.start()])
        depth, j = 1, m.end()
        while j < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        i = j
    out.append(text[i:])
    return "".join(out)


def imports(mod, text, known):
    paths = [["crate"] + p.split("::") for p in re.findall(r"\bcrate::((?:\w+::)*\w+)", text)]
    paths += [["super"] + p.split("::") for p in re.findall(r"\bsuper::((?:\w+::)*\w+)", text)]
    paths += expand_use(text)
    deps = set()
    for p in paths:
        if p[0] == "crate":
            base, rest = [], p[1:]
        else:
            base = list(mod[:-1])
            rest = p[1:]
            while rest and rest[0] == "super":
                base = base[:-1]
                rest = rest[1:]
        full = base + rest
        best = None
        for k in range(len(full), 0, -1):
            if tuple(full[:k]) in known:
                best = tuple(full[:k])
                break
        if best and best != mod:
            deps.add(best)
    return deps


def sccs(graph):
    index, low, stack, on, out, n = {}, {}, [], set(), [], [0]

    def strong(v):
        index[v] = low[v] = n[0]
        n[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            out.append(comp)

    sys.setrecursionlimit(10000)
    for v in graph:
        if v not in index:
            strong(v)
    return out


def parent_child(a, b):
    return a[: len(b)] == b or b[: len(a)] == a


def long_functions(rel, text):
    lines = code_only(text).split("\n")
    out, i = [], 0
    in_test = False
    depth_at_test = None
    depth = 0
    while i < len(lines):
        line = lines[i]
        if re.match(r"\s*#\[cfg\(test\)\]", line):
            in_test = True
            depth_at_test = depth
        m = re.match(r"\s*(pub(\([^)]*\))?\s+)?(const\s+)?(async\s+)?fn\s+(\w+)", line)
        if m and not in_test:
            # find the opening brace, then its match
            d, j, opened = 0, i, False
            while j < len(lines):
                for ch in lines[j]:
                    if ch == "{":
                        d += 1
                        opened = True
                    elif ch == "}":
                        d -= 1
                if opened and d == 0:
                    break
                if not opened and lines[j].rstrip().endswith(";"):
                    break
                j += 1
            length = j - i + 1
            if opened and length > MAX_FN:
                out.append((f"{rel}:{i + 1}", m.group(5), length))
        for ch in line:
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
                if in_test and depth <= depth_at_test:
                    in_test = False
        i += 1
    return out


def main():
    known = files()
    graph, long_fns, long_files = {}, [], []
    for mod, rel in sorted(known.items()):
        with open(os.path.join(ROOT, rel), encoding="utf-8") as f:
            text = f.read()
        code = strip_tests(code_only(text))
        graph[mod] = imports(mod, code, known)
        n = text.count("\n")
        if n > MAX_FILE and not rel.endswith("tests.rs"):
            long_files.append((rel, n))
        if not rel.endswith("tests.rs"):
            long_fns += long_functions(rel, text)
    cycles = []
    for comp in sccs(graph):
        if len(comp) < 2:
            continue
        # a module and its own children only: allowed
        root = min(comp, key=len)
        if all(parent_child(root, c) for c in comp):
            continue
        cycles.append(sorted(known[c] for c in comp))
    report = {
        "files": len(graph),
        "cycles": cycles,
        "files_in_cycles": sum(len(c) for c in cycles),
        "long_functions": sorted(long_fns, key=lambda x: -x[2]),
        "long_files": sorted(long_files, key=lambda x: -x[1]),
    }
    if "--json" in sys.argv:
        print(json.dumps(report, indent=1))
        return
    print(f"files: {report['files']}")
    print(f"import cycles: {len(cycles)} ({report['files_in_cycles']} files)")
    for c in cycles:
        print("  " + " ".join(c))
    print(f"functions over {MAX_FN} lines: {len(long_fns)}")
    for where, name, n in report["long_functions"]:
        print(f"  {n:4} {name} {where}")
    print(f"files over {MAX_FILE} lines: {len(long_files)}")
    for rel, n in report["long_files"]:
        print(f"  {n:5} {rel}")


if __name__ == "__main__":
    main()

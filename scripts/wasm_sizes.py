#!/usr/bin/env python3
"""What each crate adds to a .wasm (issue 13 item 3): the code section's function bodies
grouped by the crate their (legacy-mangled) name starts with, from the module's name section.
Data segments are reported as one line. Usage: python3 scripts/wasm_sizes.py FILE.wasm [N]"""
import re
import sys
from collections import Counter


def leb(buf, i):
    result = shift = 0
    while True:
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return result, i


def sections(buf):
    i = 8
    while i < len(buf):
        sid = buf[i]
        size, j = leb(buf, i + 1)
        yield sid, buf[j:j + size]
        i = j + size


def crate_of(name):
    m = re.match(r"_ZN(\d+)", name)
    if m:
        n = int(m.group(1))
        head = name[len(m.group(0)):][:n]
        if head.startswith("_$LT$"):  # <T as Trait>::f: name the type's crate
            inner = re.search(r"_\$LT\$([A-Za-z0-9_]+)\.\.", head)
            return inner.group(1) if inner else "<impl>"
        return head
    if name.startswith("_R"):
        return "<v0>"
    return name.split("::")[0] if "::" in name else "<other>"


def main():
    buf = open(sys.argv[1], "rb").read()
    top = int(sys.argv[2]) if len(sys.argv) > 2 else 25
    imported, bodies, names, data = 0, [], {}, 0
    for sid, body in sections(buf):
        if sid == 2:  # imports: count functions
            count, i = leb(body, 0)
            for _ in range(count):
                for _ in range(2):
                    n, i = leb(body, i)
                    i += n
                kind = body[i]
                i += 1
                if kind == 0:
                    _, i = leb(body, i)
                    imported += 1
                elif kind == 1:
                    i += 1
                    flags, i = leb(body, i)
                    _, i = leb(body, i)
                    if flags & 1:
                        _, i = leb(body, i)
                elif kind == 2:
                    flags, i = leb(body, i)
                    _, i = leb(body, i)
                    if flags & 1:
                        _, i = leb(body, i)
                else:
                    i += 2
        elif sid == 10:
            count, i = leb(body, 0)
            for _ in range(count):
                size, j = leb(body, i)
                bodies.append(size + (j - i))
                i = j + size
        elif sid == 11:
            data = len(body)
        elif sid == 0:
            n, i = leb(body, 0)
            if body[i:i + n] != b"name":
                continue
            i += n
            while i < len(body):
                sub = body[i]
                size, j = leb(body, i + 1)
                if sub == 1:
                    count, k = leb(body, j)
                    for _ in range(count):
                        idx, k = leb(body, k)
                        ln, k = leb(body, k)
                        names[idx] = body[k:k + ln].decode("utf-8", "replace")
                        k += ln
                i = j + size
    by = Counter()
    for n, size in enumerate(bodies):
        by[crate_of(names.get(imported + n, "<unnamed>"))] += size
    total = sum(bodies)
    print(f"{sys.argv[1]}: {len(buf)} bytes; code {total}, data {data}")
    print(f"{'crate':<28} {'code bytes':>10} {'share':>6}")
    for crate, size in by.most_common(top):
        print(f"{crate:<28} {size:>10} {100 * size / total:>5.1f}%")


if __name__ == "__main__":
    main()

"""Exclusive c14n of each document by lxml (libxml2), for tests/differential.rs.

stdin: JSON list of {"xml": str, "apex": int, "inclusive": [prefixes]}; stdout: JSON list of
{"c14n": str} or {"error": str}. The apex is the index of an element in document order; the
canonical form is that of its subtree, without comments (what XML-DSig's exc-c14n# means).
"""
import json
import sys

from lxml import etree

out = []
for case in json.load(sys.stdin):
    try:
        root = etree.fromstring(case["xml"].encode(), etree.XMLParser(resolve_entities=False))
        apex = list(root.iter(tag=etree.Element))[case["apex"]]
        c = etree.tostring(apex, method="c14n", exclusive=True, with_comments=False,
                           inclusive_ns_prefixes=case["inclusive"] or None)
        out.append({"c14n": c.decode()})
    except Exception as e:  # noqa: BLE001 - reported back as data
        out.append({"error": repr(e)})
json.dump(out, sys.stdout)

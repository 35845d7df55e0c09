"""Flame graphs and self time from py-spy's raw (collapsed) stacks."""

import xml.etree.ElementTree as ET

import pytest

from pickwise_pipeline.flamegraph import parse_collapsed, self_time, svg, tree

pytestmark = pytest.mark.unit

RAW = """main (app.py:1);handle (api.py:10);encode (dense.py:5) 60
main (app.py:1);handle (api.py:10);dumps (json.py:3) 30
main (app.py:1);idle (loop.py:2) 10
not a stack line
"""


def test_collapsed_stacks_are_counted() -> None:
    stacks = parse_collapsed(RAW)
    assert sum(stacks.values()) == 100
    assert stacks[("main (app.py:1)", "idle (loop.py:2)")] == 10


def test_self_time_is_the_share_of_innermost_frames() -> None:
    top = self_time(parse_collapsed(RAW), top=2)
    assert top == [("encode (dense.py:5)", 0.6), ("dumps (json.py:3)", 0.3)]


def test_tree_sums_children_into_parents() -> None:
    root = tree(parse_collapsed(RAW))
    handle = root.children["main (app.py:1)"].children["handle (api.py:10)"]
    assert root.samples == 100 and handle.samples == 90


def test_svg_is_well_formed_and_names_every_frame() -> None:
    document = svg(parse_collapsed(RAW), "gateway <search>")
    root = ET.fromstring(document)
    titles = [t.text for t in root.iter("{http://www.w3.org/2000/svg}title")]
    assert any(t.startswith("encode (dense.py:5) (60 samples, 60.0%)") for t in titles)
    assert len(titles) == 6  # all, main, handle, encode, dumps, idle


def test_boxes_too_thin_to_see_are_left_out() -> None:
    stacks = parse_collapsed("main;hot 10000\nmain;rare 1\n")
    assert "rare" not in svg(stacks, "t") and "hot" in svg(stacks, "t")

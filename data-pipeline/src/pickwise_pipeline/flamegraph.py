"""Flame graphs from ``py-spy record --format raw`` (collapsed stacks: ``frame;frame;frame count`` a line): a
self-contained SVG (hover a box for its frame and share) and the frames with the most self time, for
``make profile`` and docs/benchmarks.md. py-spy writes one format per recording; drawing the SVG here from
the raw stacks gives both from one recording.
"""

from __future__ import annotations

import html
import zlib
from collections import Counter
from dataclasses import dataclass, field

WIDTH_PX = 1200
ROW_PX = 16
MIN_SHARE = 0.002  # boxes under 0.2 % of the samples are not drawn


@dataclass
class Node:
    name: str
    samples: int = 0
    children: dict[str, Node] = field(default_factory=dict)


def parse_collapsed(text: str) -> Counter[tuple[str, ...]]:
    """Each distinct stack (root first) and its sample count."""
    stacks: Counter[tuple[str, ...]] = Counter()
    for line in text.splitlines():
        stack, _, count = line.rstrip().rpartition(" ")
        if stack and count.isdigit():
            stacks[tuple(stack.split(";"))] += int(count)
    return stacks


def tree(stacks: Counter[tuple[str, ...]]) -> Node:
    root = Node("all")
    for frames, count in stacks.items():
        root.samples += count
        node = root
        for frame in frames:
            node = node.children.setdefault(frame, Node(frame))
            node.samples += count
    return root


def self_time(stacks: Counter[tuple[str, ...]], top: int = 10) -> list[tuple[str, float]]:
    """The ``top`` frames by self time (samples where the frame is the innermost), as shares of all samples."""
    total = sum(stacks.values())
    leaves: Counter[str] = Counter()
    for frames, count in stacks.items():
        if frames:
            leaves[frames[-1]] += count
    return [(frame, count / total) for frame, count in leaves.most_common(top)] if total else []


def _colour(name: str) -> str:
    hue = zlib.crc32(name.split(" (")[0].encode()) % 60  # reds to yellows, stable per function
    return f"hsl({hue},85%,{58 + hue % 12}%)"


def svg(stacks: Counter[tuple[str, ...]], title: str) -> str:
    """A flame graph (root at the bottom) of the stacks as one SVG document."""
    root = tree(stacks)
    depth = max((len(s) for s in stacks), default=0) + 1
    height = (depth + 2) * ROW_PX + 10
    boxes: list[str] = []
    scale = (WIDTH_PX - 20) / max(root.samples, 1)

    def draw(node: Node, x: float, level: int) -> None:
        width = node.samples * scale
        if node.samples < root.samples * MIN_SHARE:
            return
        y = height - (level + 1) * ROW_PX - 5
        share = 100.0 * node.samples / max(root.samples, 1)
        label = html.escape(node.name)
        text = html.escape(node.name[: max(0, int(width / 7) - 1)]) if width > 30 else ""
        boxes.append(f'<g><title>{label} ({node.samples} samples, {share:.1f}%)</title>'
                     f'<rect x="{x:.1f}" y="{y}" width="{width:.1f}" height="{ROW_PX - 1}" '
                     f'fill="{_colour(node.name)}" rx="2"/>'
                     + (f'<text x="{x + 3:.1f}" y="{y + ROW_PX - 4}">{text}</text>' if text else "") + "</g>")
        offset = x
        for child in sorted(node.children.values(), key=lambda c: c.name):
            draw(child, offset, level + 1)
            offset += child.samples * scale

    draw(root, 10.0, 0)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH_PX}" height="{height}" '
            f'viewBox="0 0 {WIDTH_PX} {height}" font-family="monospace" font-size="11">'
            f'<rect width="100%" height="100%" fill="#fdfdf8"/>'
            f'<text x="10" y="16" font-size="14">{html.escape(title)} ({root.samples} samples)</text>'
            + "".join(boxes) + "</svg>\n")

"""A small layered ("Sugiyama") layout for drawing graphs without Graphviz.

The caller gives every node a rank (its row, top to bottom) and a size; every edge must go
from a lower rank to a higher one, which the computational graph guarantees (an input is
always older than the function that reads it). The layout then

1. breaks every edge that skips rows into a chain through invisible one-point "dummy"
   nodes, so that edges bend around the nodes in between instead of crossing them;
2. orders each row to reduce crossings (the barycenter heuristic: a node moves towards the
   mean position of its neighbours in the row above or below, sweeping down and up);
3. places the nodes of each row left to right, as close as possible to the mean of their
   neighbours, never closer to each other than a fixed gap (a least-squares problem under
   order constraints, solved exactly by isotonic regression);
4. routes every edge as a smooth curve through its dummies, from a port on the bottom of
   its source to a port on the top of its target. Ports are spread along the node, so two
   edges between the same pair of nodes (``y = x + x``) are two visible curves.

Everything is deterministic: the same graph always gives the same picture.
"""

from __future__ import annotations

from dataclasses import dataclass, field

NODE_GAP = 28.0       # horizontal space between two neighbouring nodes of a row
DUMMY_WIDTH = 8.0     # an edge passing through a row takes this much room
ROW_GAP = 44.0        # vertical space between two rows (room for the curves)
MARGIN = 12.0


@dataclass
class Box:
    """A node to place: ``rank`` is its row; width and height in pixels."""

    key: str
    rank: int
    width: float
    height: float
    shape: str = "box"  # "box" or "ellipse": where the edge ports sit on its outline
    x: float = 0.0      # centre, set by layout()
    y: float = 0.0


@dataclass
class Route:
    """An edge as drawn: ``points`` from the source's port to the target's port."""

    source: str
    target: str
    points: list[tuple[float, float]] = field(default_factory=list)


@dataclass
class Layout:
    boxes: dict[str, Box]
    routes: list[Route]
    width: float
    height: float


def layout(boxes: list[Box], edges: list[tuple[str, str]]) -> Layout:
    """Place ``boxes`` and route ``edges`` (pairs of keys, source rank < target rank)."""
    by_key = {b.key: b for b in boxes}
    for s, t in edges:
        if by_key[s].rank >= by_key[t].rank:
            raise ValueError(f"layout: edge {s} -> {t} goes from rank {by_key[s].rank} to "
                             f"rank {by_key[t].rank}; edges must point to a higher rank")
    ranks = sorted({b.rank for b in boxes})
    row_of = {r: i for i, r in enumerate(ranks)}  # empty ranks in between are dropped
    rows: list[list[str]] = [[] for _ in ranks]
    width = {b.key: b.width for b in boxes}
    for b in boxes:  # the caller's order is the first guess
        rows[row_of[b.rank]].append(b.key)

    # 1. Chains of dummies: every edge becomes a list of keys, one per row it crosses.
    chains: list[list[str]] = []
    for n, (s, t) in enumerate(edges):
        chain = [s]
        for r in range(row_of[by_key[s].rank] + 1, row_of[by_key[t].rank]):
            dummy = f"\0{n}:{r}"
            rows[r].append(dummy)
            width[dummy] = DUMMY_WIDTH
            chain.append(dummy)
        chain.append(t)
        chains.append(chain)
    up: dict[str, list[str]] = {k: [] for row in rows for k in row}
    down: dict[str, list[str]] = {k: [] for row in rows for k in row}
    for chain in chains:
        for above, below in zip(chain, chain[1:]):
            down[above].append(below)
            up[below].append(above)

    # 2. Order the rows.
    rows = _order_rows(rows, up, down)

    # 3. x: near the mean of the neighbours, at least NODE_GAP apart.
    x: dict[str, float] = {}
    for row in rows:
        position = 0.0
        for i, k in enumerate(row):
            if i:
                position += _gap(width, row[i - 1], k)
            x[k] = position
    for sweep in range(12):
        order = range(len(rows)) if sweep % 2 == 0 else range(len(rows) - 1, -1, -1)
        for r in order:
            row = rows[r]
            wanted = []
            for k in row:
                neighbours = up[k] + down[k]
                wanted.append(sum(x[n] for n in neighbours) / len(neighbours)
                              if neighbours else x[k])
            gaps = [_gap(width, a, b) for a, b in zip(row, row[1:])]
            for k, value in zip(row, _place_in_order(wanted, gaps)):
                x[k] = value
    left = min(x[k] - width[k] / 2 for row in rows for k in row)
    for k in x:
        x[k] += MARGIN - left

    # y: rows as tall as their tallest node.
    y: dict[str, float] = {}
    top = MARGIN
    for row in rows:
        height = max((by_key[k].height for k in row if k in by_key), default=DUMMY_WIDTH)
        for k in row:
            y[k] = top + height / 2
        top += height + ROW_GAP
    for b in boxes:
        b.x, b.y = x[b.key], y[b.key]

    # 4. Routes with spread ports.
    routes = [Route(chain[0], chain[-1]) for chain in chains]
    out_ports = _ports(chains, by_key, x, outgoing=True)
    in_ports = _ports(chains, by_key, x, outgoing=False)
    for n, (route, chain) in enumerate(zip(routes, chains)):
        route.points = ([out_ports[n]] + [(x[k], y[k]) for k in chain[1:-1]] + [in_ports[n]])
    total_width = max(x[k] + width[k] / 2 for k in x) + MARGIN
    return Layout(by_key, routes, total_width, top - ROW_GAP + MARGIN)


def _gap(width: dict[str, float], a: str, b: str) -> float:
    return (width[a] + width[b]) / 2 + NODE_GAP


def _order_rows(rows: list[list[str]], up: dict[str, list[str]],
                down: dict[str, list[str]]) -> list[list[str]]:
    """Barycenter sweeps; keeps the ordering with the fewest crossings seen."""
    best = [list(row) for row in rows]
    best_crossings = _crossings(best, down)
    if len(up) > 3000:  # a huge graph: the first guess is good enough, and fast
        return best
    current = [list(row) for row in rows]
    for sweep in range(8):
        downward = sweep % 2 == 0
        order = range(1, len(current)) if downward else range(len(current) - 2, -1, -1)
        for r in order:
            fixed = current[r - 1] if downward else current[r + 1]
            index = {k: i for i, k in enumerate(fixed)}
            links = up if downward else down
            old = {k: i for i, k in enumerate(current[r])}

            def barycenter(k: str, links: dict[str, list[str]] = links,
                           index: dict[str, int] = index,
                           old: dict[str, int] = old) -> tuple[float, int]:
                """The mean position of k's neighbours in the fixed row (its old place
                without any), then its old place to break ties."""
                linked = [index[n] for n in links[k]]
                return (sum(linked) / len(linked) if linked else old[k]), old[k]

            current[r].sort(key=barycenter)
        crossings = _crossings(current, down)
        if crossings < best_crossings:
            best, best_crossings = [list(row) for row in current], crossings
    return best


def _crossings(rows: list[list[str]], down: dict[str, list[str]]) -> int:
    total = 0
    for upper, lower in zip(rows, rows[1:]):
        index = {k: i for i, k in enumerate(lower)}
        pairs = [(i, index[t]) for i, k in enumerate(upper) for t in down[k]]
        for a in range(len(pairs)):
            for b in range(a + 1, len(pairs)):
                if (pairs[a][0] - pairs[b][0]) * (pairs[a][1] - pairs[b][1]) < 0:
                    total += 1
    return total


def _place_in_order(wanted: list[float], gaps: list[float]) -> list[float]:
    """x minimising sum (x_i - wanted_i)^2 subject to x_{i+1} - x_i >= gaps_i.

    With z_i = x_i - (gaps_0 + ... + gaps_{i-1}) the constraints say z is non-decreasing:
    the least-squares fit is the isotonic regression of the shifted targets, which the
    pool-adjacent-violators algorithm computes exactly.
    """
    offsets = [0.0]
    for g in gaps:
        offsets.append(offsets[-1] + g)
    targets = [w - o for w, o in zip(wanted, offsets)]
    blocks: list[tuple[float, int]] = []  # (mean, count)
    for t in targets:
        blocks.append((t, 1))
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            mean, count = blocks.pop()
            previous_mean, previous_count = blocks[-1]
            blocks[-1] = ((previous_mean * previous_count + mean * count)
                          / (previous_count + count), previous_count + count)
    z = [mean for mean, count in blocks for _ in range(count)]
    return [zi + o for zi, o in zip(z, offsets)]


def _ports(chains: list[list[str]], by_key: dict[str, Box], x: dict[str, float],
           outgoing: bool) -> list[tuple[float, float]]:
    """Where each edge leaves its source (outgoing) or enters its target, on the outline.

    The edges at one node are sorted by where their other end lies, then spread evenly
    over the middle of the node's bottom (or top) side, so that they do not cross there.
    """
    at: dict[str, list[int]] = {}
    for n, chain in enumerate(chains):
        at.setdefault(chain[0] if outgoing else chain[-1], []).append(n)
    ports: list[tuple[float, float]] = [(0.0, 0.0)] * len(chains)
    for key, numbers in at.items():
        box = by_key[key]
        numbers.sort(key=lambda n: (x[chains[n][1] if outgoing else chains[n][-2]], n))
        span = box.width * (0.5 if box.shape == "ellipse" else 0.7)
        for i, n in enumerate(numbers):
            dx = 0.0 if len(numbers) == 1 else span * (i / (len(numbers) - 1) - 0.5)
            if box.shape == "ellipse":  # on the ellipse through the box's corners' extent
                rx, ry = box.width / 2, box.height / 2
                dy = ry * (1 - min(1.0, (dx / rx) ** 2)) ** 0.5
            else:
                dy = box.height / 2
            ports[n] = (box.x + dx, box.y + dy if outgoing else box.y - dy)
    return ports


def svg_path(points: list[tuple[float, float]]) -> str:
    """An SVG path through ``points`` with vertical tangents at each (smooth, top-down)."""
    (x0, y0), rest = points[0], points[1:]
    d = f"M{x0:.1f},{y0:.1f}"
    for x1, y1 in rest:
        mid = (y0 + y1) / 2
        d += f" C{x0:.1f},{mid:.1f} {x1:.1f},{mid:.1f} {x1:.1f},{y1:.1f}"
        x0, y0 = x1, y1
    return d

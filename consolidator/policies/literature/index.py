"""PABFD's candidate hosts ordered by power increase, so a placement looks at a few hosts, not all.

PABFD picks, among the suitable hosts, the one whose power rises least (``power_increase``), ties to
the lowest id: the lexicographic minimum of (increase, id). A host's increase for a VM asking ``d`` is
``P(x + δ) − P_before`` with ``x`` its allocated share, ``δ = d / total`` and ``P`` its SPECpower line
(piecewise linear in utilisation, one per host type). Split it into the host's own **offset**
``c = P(x) − P_before`` (known before the VM is seen) and the rise ``P(x + δ) − P(x)``; over the hosts
of one type whose ``x`` lies in one tenth of the utilisation range (a *bucket*), the rise is at least a
bound ``g`` computed from the line alone (``_rise_floor``). So ``c + g`` (less a rounding allowance) is
a floor on every increase in the bucket. Each bucket keeps its hosts in a binary heap by ``c``, and a
search pops (bucket, heap node) pairs from a frontier in order of ``c + g``, computing the exact
increase (the same ``power_increase`` call as the scan) only for the hosts it pops, until the floor
exceeds the best found. Every host whose increase could equal or beat the best is looked at, so the
choice is exactly the scan's, ties included (``tests/literature/test_lit_index.py`` compares both on
random states); a placement costs O(hosts looked at × log hosts).

The index holds exactly the hosts a round may still choose: in use and not excluded. The caller
inserts, removes and re-keys hosts (``index_update`` after every change of a host's allocation).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from consolidator.policies.literature._compile import jit, jit_inline
from consolidator.policies.literature.arrays import F8, I8, Hosts
from consolidator.policies.literature.power import spec_power

SEGMENTS = 11  # utilisation tenths 0..9, and 10 for a host at (or, by rounding, above) full load
_EDGE = 1e-9  # utilisation slack at bucket edges (x is a rounded quotient)


class HostIndex(NamedTuple):
    group: I8  # (H,) host type: same core speed, total and power table
    first: I8  # (G,) one host of each type (its table and total stand for the type)
    start: I8  # (B,) offset of bucket b's heap in ``heap``; B = G * SEGMENTS
    size: I8  # (B,) hosts in bucket b
    heap: I8  # (SEGMENTS * H,) host ids, a binary min-heap by (offset, id) per bucket
    bucket: I8  # (H,) bucket of the host, -1 when not indexed
    pos: I8  # (H,) its node in the bucket's heap
    offset: F8  # (H,) c = P(x) - P_before when indexed
    floor: F8  # (B,) per search: the bucket's rise floor less the rounding allowance (inf: skip)
    fr_lb: F8  # frontier of the search (a binary min-heap of (floor, bucket, node))
    fr_b: I8
    fr_node: I8
    tol: F8  # (1,) rounding allowance in watts


@jit
def new_index(hs: Hosts) -> HostIndex:
    """An empty index over ``hs``; host types found from core speed, total and power table."""
    n = hs.n.shape[0]
    group = np.full(n, -1, np.int64)
    first = np.empty(n, np.int64)
    count = np.zeros(n, np.int64)
    g = 0
    order = np.argsort(hs.total, kind="mergesort")
    for i in range(n):  # hosts of one type are few in kind: compare each with the types seen so far
        h = order[i]
        for k in range(g - 1, -1, -1):
            f = first[k]
            if hs.total[f] == hs.total[h] and hs.pe_mips[f] == hs.pe_mips[h] and np.all(hs.table[f] == hs.table[h]):
                group[h] = k
                break
            if hs.total[f] != hs.total[h]:
                break  # sorted by total: earlier types have a smaller total
        if group[h] < 0:
            first[g] = h
            group[h] = g
            g += 1
        count[group[h]] += 1
    start = np.empty(g * SEGMENTS, np.int64)
    s = 0
    for k in range(g):
        for j in range(SEGMENTS):
            start[k * SEGMENTS + j] = s
            s += count[k]
    b = g * SEGMENTS
    tol = np.array([1e-9 * (1.0 + np.max(np.abs(hs.table))) if n else 1e-9])
    return HostIndex(group, first[:g].copy(), start, np.zeros(b, np.int64), np.empty(max(s, 1), np.int64),
                     np.full(n, -1, np.int64), np.zeros(n, np.int64), np.zeros(n), np.zeros(b),
                     np.empty(2 * n + b + 2), np.empty(2 * n + b + 2, np.int64), np.empty(2 * n + b + 2, np.int64),
                     tol)


@jit_inline
def _before(ix: HostIndex, a: int, b: int) -> bool:
    """Heap order: by offset, then id."""
    ka = ix.offset[a]
    kb = ix.offset[b]
    return ka < kb or (ka == kb and a < b)


@jit
def _sift_up(ix: HostIndex, b: int, node: int) -> None:
    base = ix.start[b]
    h = ix.heap[base + node]
    while node > 0:
        parent = (node - 1) // 2
        p = ix.heap[base + parent]
        if not _before(ix, h, p):
            break
        ix.heap[base + node] = p
        ix.pos[p] = node
        node = parent
    ix.heap[base + node] = h
    ix.pos[h] = node


@jit
def _sift_down(ix: HostIndex, b: int, node: int) -> None:
    base = ix.start[b]
    n = ix.size[b]
    h = ix.heap[base + node]
    while True:
        child = 2 * node + 1
        if child >= n:
            break
        c = ix.heap[base + child]
        if child + 1 < n and _before(ix, ix.heap[base + child + 1], c):
            child += 1
            c = ix.heap[base + child]
        if not _before(ix, c, h):
            break
        ix.heap[base + node] = c
        ix.pos[c] = node
        node = child
    ix.heap[base + node] = h
    ix.pos[h] = node


@jit
def index_insert(ix: HostIndex, hs: Hosts, h: int) -> None:
    """Index ``h`` by its allocation now (it must not be indexed)."""
    x = hs.alloc_sum[h] / hs.total[h]
    seg = min(SEGMENTS - 1, max(0, int(np.floor(x * 10.0))))
    b = ix.group[h] * SEGMENTS + seg
    ix.offset[h] = spec_power(hs.table[h], min(x, 1.0)) - hs.watts_before[h]
    node = ix.size[b]
    ix.size[b] = node + 1
    ix.bucket[h] = b
    ix.heap[ix.start[b] + node] = h
    _sift_up(ix, b, node)


@jit
def index_remove(ix: HostIndex, h: int) -> None:
    """Take ``h`` out of the index (nothing if it is not in it)."""
    b = ix.bucket[h]
    if b < 0:
        return
    ix.bucket[h] = -1
    node = ix.pos[h]
    last = ix.size[b] - 1
    ix.size[b] = last
    if node == last:
        return
    moved = ix.heap[ix.start[b] + last]
    ix.heap[ix.start[b] + node] = moved
    ix.pos[moved] = node
    _sift_up(ix, b, node)
    _sift_down(ix, b, ix.pos[moved])


@jit
def index_update(ix: HostIndex, hs: Hosts, h: int) -> None:
    """Re-key ``h`` after its allocation changed (nothing if it is not indexed)."""
    if ix.bucket[h] >= 0:
        index_remove(ix, h)
        index_insert(ix, hs, h)


@jit_inline
def _line(table: F8, u: float) -> float:
    """The SPECpower line at ``u`` in [0, 1] (exact linear interpolation; a floor, not the score)."""
    i = min(9, max(0, int(np.floor(u * 10.0))))
    return float(table[i] + (table[i + 1] - table[i]) * (u * 10.0 - i))


@jit
def _rise_floor(table: F8, seg: int, delta: float) -> float:
    """min over x in bucket ``seg`` of P(x + δ) − P(x), for x + δ within [0, 1] (a host beyond has less
    room than δ); inf when none fits.

    The rise is piecewise linear in x with kinks where x or x + δ crosses a tenth, so its minimum is
    at an end of the bucket or at x = k/10 − δ inside it."""
    lo = max(0.0, seg / 10.0 - _EDGE)
    hi = min(1.0 - delta + _EDGE, (seg + 1) / 10.0 + _EDGE)
    if delta < 0.0 or hi < lo - _EDGE:
        return np.inf
    hi = max(hi, lo)
    best = min(_line(table, min(1.0, lo + delta)) - _line(table, lo),
               _line(table, min(1.0, hi + delta)) - _line(table, hi))
    for k in range(1, 11):
        x = k / 10.0 - delta
        if lo < x < hi:
            best = min(best, _line(table, k / 10.0) - _line(table, x))
    return float(best)


@jit_inline
def _push(ix: HostIndex, n: int, lb: float, b: int, node: int) -> int:
    i = n
    while i > 0:
        parent = (i - 1) // 2
        if ix.fr_lb[parent] <= lb:
            break
        ix.fr_lb[i] = ix.fr_lb[parent]
        ix.fr_b[i] = ix.fr_b[parent]
        ix.fr_node[i] = ix.fr_node[parent]
        i = parent
    ix.fr_lb[i] = lb
    ix.fr_b[i] = b
    ix.fr_node[i] = node
    return n + 1


@jit_inline
def _pop(ix: HostIndex, n: int) -> int:
    """Drop the frontier's root (read it first); returns the new size."""
    n -= 1
    lb = ix.fr_lb[n]
    b = ix.fr_b[n]
    node = ix.fr_node[n]
    i = 0
    while True:
        c = 2 * i + 1
        if c >= n:
            break
        if c + 1 < n and ix.fr_lb[c + 1] < ix.fr_lb[c]:
            c += 1
        if ix.fr_lb[c] >= lb:
            break
        ix.fr_lb[i] = ix.fr_lb[c]
        ix.fr_b[i] = ix.fr_b[c]
        ix.fr_node[i] = ix.fr_node[c]
        i = c
    if n > 0:
        ix.fr_lb[i] = lb
        ix.fr_b[i] = b
        ix.fr_node[i] = node
    return n


@jit
def search_start(ix: HostIndex, hs: Hosts, d: float) -> int:
    """Seed the frontier with the root of every bucket a VM asking ``d`` could fit; returns its size."""
    n = 0
    for k in range(ix.first.shape[0]):
        f = ix.first[k]
        fits = hs.pe_mips[f] >= d
        for seg in range(SEGMENTS):
            b = k * SEGMENTS + seg
            ix.floor[b] = np.inf
            if not fits or ix.size[b] == 0:
                continue
            floor = _rise_floor(hs.table[f], seg, d / hs.total[f])
            if floor == np.inf:
                continue
            ix.floor[b] = floor - ix.tol[0]
            n = _push(ix, n, ix.offset[ix.heap[ix.start[b]]] + ix.floor[b], b, 0)
    return n


@jit
def search_next(ix: HostIndex, n: int, lowest: float) -> tuple[int, int]:
    """The next host whose increase may be <= ``lowest`` (-1 when none is left), and the frontier size."""
    if n == 0 or ix.fr_lb[0] > lowest:
        return -1, n
    b = ix.fr_b[0]
    node = ix.fr_node[0]
    n = _pop(ix, n)
    base = ix.start[b]
    for child in (2 * node + 1, 2 * node + 2):
        if child < ix.size[b]:
            n = _push(ix, n, ix.offset[ix.heap[base + child]] + ix.floor[b], b, child)
    return ix.heap[base + node], n

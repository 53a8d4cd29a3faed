"""Routing: which items go to annotation, to whom, and how many times.

:func:`route` is pure and deterministic (same spec, options and seed, same plan):

1. **Sample** ``sample_size`` items (all when None) among the non-gold items. With ``stratify_by``
   the sample is allocated to strata (tuples of the items' strata values) in proportion to their
   size by largest remainder, with at least one item per stratum while the budget allows. Within a
   stratum, items are taken lowest-confidence-first when asked, otherwise in a seeded random order.
2. **Gold** items (items with known answers) are mixed in: ``gold_fraction`` of the sample, every
   gold item when there are fewer. Every named annotator gets every gold item, so each one's
   accuracy is measured on the same items.
3. **Overlap**: each item gets ``overlap`` distinct annotators out of ``annotators``, always the
   least loaded ones first (ties by a seeded order), so the load is balanced within one item.
   Without named annotators the plan leaves assignment open (any annotator, ``overlap`` times).
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass, field
from typing import Sequence

from annotation.spec import AnnotationSpec, Item


@dataclass(frozen=True)
class RoutingOptions:
    sample_size: int | None = None
    stratify_by: tuple[str, ...] = ()
    lowest_confidence_first: bool = False
    overlap: int = 1
    gold_fraction: float = 0.0
    annotators: tuple[str, ...] = ()
    seed: int = 0

    def __post_init__(self) -> None:
        if self.overlap < 1:
            raise ValueError(f"routing: overlap must be at least 1, got {self.overlap}")
        if self.annotators and self.overlap > len(self.annotators):
            raise ValueError(
                f"routing: overlap {self.overlap} needs at least {self.overlap} annotators, got {len(self.annotators)}"
            )
        if not 0 <= self.gold_fraction < 1:
            raise ValueError(f"routing: gold_fraction must be in [0, 1), got {self.gold_fraction}")
        if self.sample_size is not None and self.sample_size < 0:
            raise ValueError(f"routing: sample_size must be >= 0, got {self.sample_size}")


@dataclass(frozen=True)
class Assignment:
    item: Item
    annotators: tuple[str, ...] = ()  # empty: open to anyone
    is_gold: bool = False


@dataclass(frozen=True)
class RoutingPlan:
    assignments: tuple[Assignment, ...]
    options: RoutingOptions
    strata: dict[tuple[str, ...], int] = field(default_factory=dict)  # stratum -> items sampled

    @property
    def item_ids(self) -> list[str]:
        return [a.item.id for a in self.assignments]

    def load(self) -> dict[str, int]:
        counts = {a: 0 for a in self.options.annotators}
        for a in self.assignments:
            for who in a.annotators:
                counts[who] += 1
        return counts


def _seeded_key(seed: int, item_id: str) -> str:
    return hashlib.sha256(f"{seed}:{item_id}".encode()).hexdigest()


def _order(items: Sequence[Item], opts: RoutingOptions) -> list[Item]:
    if opts.lowest_confidence_first:
        return sorted(items, key=lambda i: (i.confidence if i.confidence is not None else math.inf, _seeded_key(opts.seed, i.id)))
    return sorted(items, key=lambda i: _seeded_key(opts.seed, i.id))


def _allocate(sizes: dict[tuple[str, ...], int], budget: int) -> dict[tuple[str, ...], int]:
    """Largest-remainder allocation of ``budget`` to strata, one each first while it lasts."""
    total = sum(sizes.values())
    if budget >= total:
        return dict(sizes)
    keys = sorted(sizes)
    alloc = {k: 0 for k in keys}
    if budget >= len(keys):
        alloc = {k: 1 for k in keys}
    else:  # fewer slots than strata: the largest strata get one each
        for k in sorted(keys, key=lambda k: (-sizes[k], k))[:budget]:
            alloc[k] = 1
        return alloc
    rest = budget - len(keys)
    spare = {k: sizes[k] - 1 for k in keys}
    spare_total = sum(spare.values())
    quotas = {k: rest * spare[k] / spare_total if spare_total else 0 for k in keys}
    for k in keys:
        alloc[k] += int(quotas[k])
    left = budget - sum(alloc.values())
    for k in sorted(keys, key=lambda k: (-(quotas[k] - int(quotas[k])), k)):
        if left == 0:
            break
        if alloc[k] < sizes[k]:
            alloc[k] += 1
            left -= 1
    return alloc


def _sample(items: list[Item], opts: RoutingOptions) -> tuple[list[Item], dict[tuple[str, ...], int]]:
    budget = len(items) if opts.sample_size is None else min(opts.sample_size, len(items))
    if not opts.stratify_by:
        chosen = _order(items, opts)[:budget]
        return chosen, {(): len(chosen)}
    groups: dict[tuple[str, ...], list[Item]] = {}
    for item in items:
        missing = [k for k in opts.stratify_by if k not in item.strata]
        if missing:
            raise ValueError(f"routing: item {item.id!r} has no stratum {missing[0]!r} (has {', '.join(item.strata) or 'none'})")
        groups.setdefault(tuple(item.strata[k] for k in opts.stratify_by), []).append(item)
    alloc = _allocate({k: len(v) for k, v in groups.items()}, budget)
    chosen: list[Item] = []
    for key in sorted(groups):
        chosen.extend(_order(groups[key], opts)[: alloc[key]])
    return _order(chosen, opts), {k: n for k, n in alloc.items() if n}


def route(spec: AnnotationSpec, opts: RoutingOptions, *, exclude: set[str] | frozenset[str] = frozenset()) -> RoutingPlan:
    """The routing plan for ``spec``'s items, leaving out ``exclude`` (e.g. items already labelled)."""
    pool = [i for i in spec.items if i.id not in exclude]
    regular = [i for i in pool if i.gold is None]
    gold = [i for i in pool if i.gold is not None]
    chosen, strata = _sample(regular, opts)
    n_gold = min(len(gold), math.ceil(len(chosen) * opts.gold_fraction / (1 - opts.gold_fraction))) if opts.gold_fraction else 0
    gold_chosen = sorted(gold, key=lambda i: _seeded_key(opts.seed, i.id))[:n_gold]

    # Spread gold items evenly through the queue so annotators meet them throughout.
    queue: list[tuple[Item, bool]] = [(i, False) for i in chosen]
    step = len(queue) // (n_gold + 1) if n_gold else 0
    for k, g in enumerate(gold_chosen):
        queue.insert(min(len(queue), (k + 1) * step + k), (g, True))

    rng = random.Random(opts.seed)
    tiebreak = {a: rng.random() for a in opts.annotators}
    load = {a: 0 for a in opts.annotators}
    assignments = []
    for item, is_gold in queue:
        who: tuple[str, ...] = ()
        if opts.annotators and is_gold:  # every annotator meets every gold item
            who = tuple(opts.annotators)
        elif opts.annotators:
            who = tuple(sorted(opts.annotators, key=lambda a: (load[a], tiebreak[a]))[: opts.overlap])
            for a in who:
                load[a] += 1
        assignments.append(Assignment(item, who, is_gold))
    return RoutingPlan(tuple(assignments), opts, strata)

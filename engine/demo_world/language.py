"""Referring expressions: a small grammar, and a resolver that keeps only unambiguous ones.

Every expression is built from a *head* ("the [big|small] [colour] shape-or-noun") and one
construction (its *kind*):

  attribute             the red circle / the small shape
  attribute_plural      the two red circles                       (video)
  motion                the square moving left / the red shape standing still   (video)
  motion_plural         the two circles moving right              (video)
  size_superlative      the largest square / the smallest red shape
  size_comparative      the larger of the two circles
  position_superlative  the leftmost square / the topmost red shape
  ordinal               the second green shape from the top
  relation              the blue triangle left of the red circle

Graded words are resolved three-valued: clearly true, clearly false, or in doubt. An
expression is kept only when its intended objects are clearly true and every other object
is clearly false, in every frame: "left of" needs the centres `position_margin` apart,
"leftmost" and "second from the top" need that gap to their neighbours in the order, and
"largest"/"larger" need radii `size_ratio` apart. Motion, colour, shape and size class are
categorical. Words that add nothing are avoided where they would let a model ignore the
construction: a motion, a relation, a superlative or an ordinal is only used when its head
alone names more objects than it refers to.
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import product

import numpy as np

from engine.demo_world.world import KINDS, SIZES, WorldConfig

KINDS_VIDEO = KINDS
KINDS_IMAGE = tuple(k for k in KINDS if "motion" not in k and "plural" not in k)
NUMBERS = {2: "two", 3: "three"}
ORDINALS = {2: "second", 3: "third"}
# direction -> (axis, sign): a larger sign * coordinate is further that way
DIRECTIONS = {"left": (0, -1), "right": (0, 1), "top": (1, -1), "bottom": (1, 1)}
SUPERLATIVES = {"left": "leftmost", "right": "rightmost", "top": "topmost", "bottom": "bottommost"}
RELATIONS = {"left of": (0, -1), "right of": (0, 1), "above": (1, -1), "below": (1, 1)}
MOTION_PHRASES = {"left": "moving left", "right": "moving right", "up": "moving up", "down": "moving down",
                  "still": "standing still"}
SIZE_WORDS = {"small": "small", "big": "big"}


@dataclass(frozen=True)
class Expression:
    text: str
    targets: tuple[int, ...]  # object indices in the scene, ascending
    kind: str


Head = tuple  # (size | None, colour | None, shape | None)


def noun(shape: str | None, plural: bool = False) -> str:
    word = shape or "shape"
    return word + "s" if plural else word


def head_text(head: Head, plural: bool = False) -> str:
    size, colour, shape = head
    return " ".join(w for w in (size, colour, noun(shape, plural)) if w)


def matches(head: Head, obj) -> bool:
    size, colour, shape = head
    return (size is None or obj.size == size) and (colour is None or obj.colour == colour) and \
        (shape is None or obj.shape == shape)


def vocabulary(config: WorldConfig | None = None) -> list[str]:
    """Every word an expression can use, sorted (for building a small tokenizer)."""
    config = config or WorldConfig()
    words = {"the", "of", "from", "larger", "smaller", "largest", "smallest", "shape", "shapes"}
    words |= set(NUMBERS.values()) | set(ORDINALS.values()) | set(DIRECTIONS) | set(SUPERLATIVES.values())
    words |= {w for phrase in RELATIONS for w in phrase.split()}
    words |= {w for phrase in MOTION_PHRASES.values() for w in phrase.split()}
    words |= set(SIZE_WORDS.values()) | set(config.colours)
    words |= {noun(s) for s in config.shapes} | {noun(s, True) for s in config.shapes}
    return sorted(words)


class _Resolver:
    """Tables of a scene that every construction reads: heads, orders, relations."""

    def __init__(self, objects, size: int, config: WorldConfig):
        self.objects = objects
        self.n = len(objects)
        self.margin = config.position_margin * size
        self.ratio = config.size_ratio
        self.centres = np.stack([o.centres for o in objects])  # [N, T, 2]
        self.radius = np.array([o.radius for o in objects])
        sizes = sorted({o.size for o in objects}, key=SIZES.index)
        colours = sorted({o.colour for o in objects})
        shapes = sorted({o.shape for o in objects})
        self.heads = {}  # head -> frozenset of objects it names
        for head in product([None] + sizes, [None] + colours, [None] + shapes):
            named = frozenset(o.index for o in objects if matches(head, o))
            if named:
                self.heads[head] = named

    def position(self, direction: str) -> np.ndarray:
        axis, sign = DIRECTIONS[direction]
        return sign * self.centres[:, :, axis]  # [N, T]: larger is further that way

    def ranked(self, group, direction: str, rank: int) -> int | None:
        """The object `rank` (1-based) from the `direction` end of `group` in every frame, with
        the margin to its neighbours in the order; None when in doubt."""
        members = sorted(group)
        if len(members) < max(rank, 2):
            return None
        pos = self.position(direction)[members]  # [M, T]
        found = None
        for f in range(pos.shape[1]):
            order = np.argsort(-pos[:, f], kind="stable")
            values = pos[order, f]
            k = rank - 1
            if k > 0 and values[k - 1] - values[k] < self.margin:
                return None
            if k + 1 < len(values) and values[k] - values[k + 1] < self.margin:
                return None
            who = members[order[k]]
            if found is not None and who != found:
                return None
            found = who
        return found

    def by_size(self, group, largest: bool) -> int | None:
        members = sorted(group, key=lambda i: self.radius[i], reverse=largest)
        first, second = self.radius[members[0]], self.radius[members[1]]
        clear = first >= self.ratio * second if largest else second >= self.ratio * first
        return members[0] if clear else None

    def relations(self, relation: str) -> np.ndarray:
        """int [N, N]: [obj, anchor] is 1 if obj is clearly `relation` the anchor in every frame,
        0 if clearly not in every frame, -1 if in doubt."""
        axis, sign = RELATIONS[relation]
        c = self.centres[:, :, axis]
        offset = sign * (c[:, None, :] - c[None, :, :])  # [N, N, T]
        return np.where((offset >= self.margin).all(-1), 1, np.where((offset <= 0).all(-1), 0, -1))


def candidates(objects, size: int, config: WorldConfig, video: bool) -> dict[str, list[Expression]]:
    """Every unambiguous expression of the scene, by kind."""
    res = _Resolver(objects, size, config)
    out = {kind: [] for kind in (KINDS_VIDEO if video else KINDS_IMAGE)}

    def add(kind, text, targets):
        out[kind].append(Expression(text, tuple(sorted(targets)), kind))

    for head, named in res.heads.items():
        n_attrs = sum(v is not None for v in head)
        # attribute: the head alone names exactly the targets
        if len(named) == 1 and n_attrs:
            add("attribute", "the " + head_text(head), named)
        if video and len(named) in NUMBERS and n_attrs:
            add("attribute_plural", f"the {NUMBERS[len(named)]} {head_text(head, True)}", named)
        # motion: the head names more objects than move that way
        if video:
            for motion in config.motions:
                moving = frozenset(i for i in named if objects[i].motion == motion)
                if not moving or len(moving) == len(named):
                    continue
                if len(moving) == 1:
                    add("motion", f"the {head_text(head)} {MOTION_PHRASES[motion]}", moving)
                elif len(moving) in NUMBERS:
                    add("motion_plural", f"the {NUMBERS[len(moving)]} {head_text(head, True)} "
                                         f"{MOTION_PHRASES[motion]}", moving)
        # size: heads without a size word
        if head[0] is None and len(named) >= 2:
            for largest in (True, False):
                target = res.by_size(named, largest)
                if target is None:
                    continue
                if len(named) == 2:
                    word = "larger" if largest else "smaller"
                    add("size_comparative", f"the {word} of the two {head_text(head, True)}", [target])
                else:
                    word = "largest" if largest else "smallest"
                    add("size_superlative", f"the {word} {head_text(head)}", [target])
        # position
        if len(named) >= 2 and n_attrs <= 2:
            for direction in DIRECTIONS:
                target = res.ranked(named, direction, 1)
                if target is not None:
                    add("position_superlative", f"the {SUPERLATIVES[direction]} {head_text(head)}", [target])
                for rank in ORDINALS:
                    target = res.ranked(named, direction, rank) if len(named) >= 3 else None
                    if target is not None:
                        add("ordinal", f"the {ORDINALS[rank]} {head_text(head)} from the {direction}", [target])
    # relation: target head (ambiguous alone) + relation + an anchor named by a unique head
    anchors = [(head, next(iter(named))) for head, named in res.heads.items()
               if len(named) == 1 and 1 <= sum(v is not None for v in head) <= 2]
    tables = {relation: res.relations(relation) for relation in RELATIONS}
    for head, named in res.heads.items():
        if len(named) < 2 or sum(v is not None for v in head) > 2:
            continue
        for anchor_head, anchor in anchors:
            group = sorted(i for i in named if i != anchor)
            if not group:
                continue
            for relation, table in tables.items():
                truth = table[group, anchor]
                if (truth < 0).any() or (truth == 1).sum() != 1:
                    continue
                target = group[int(np.argmax(truth))]
                add("relation", f"the {head_text(head)} {relation} the {head_text(anchor_head)}", [target])
    return out


def choose(rng: np.random.Generator, pools: dict[str, list[Expression]], limit: int,
           kinds: tuple[str, ...] = KINDS) -> list[Expression]:
    """Up to `limit` expressions of `kinds`: kinds drawn evenly among those available, objects
    not yet referred to preferred, texts distinct."""
    pools = {kind: list(pool) for kind, pool in pools.items() if pool and kind in kinds}
    chosen, covered, texts = [], set(), set()
    while len(chosen) < limit and pools:
        kinds = list(pools)
        kind = kinds[int(rng.integers(len(kinds)))]
        pool = pools[kind]
        fresh = [i for i, e in enumerate(pool) if not set(e.targets) <= covered]
        if fresh and rng.random() < 0.75:
            pick = fresh[int(rng.integers(len(fresh)))]
        else:
            pick = int(rng.integers(len(pool)))
        expr = pool.pop(pick)
        if not pool:
            del pools[kind]
        if expr.text in texts:
            continue
        texts.add(expr.text)
        covered.update(expr.targets)
        chosen.append(expr)
    return chosen

"""compiler/records.py: the dataclass subset the compiler's value classes use, and the slotted
forms; what they must do the same way the standard library's dataclasses do."""

from __future__ import annotations

import dataclasses

import pytest

from compiler.errors import Loc
from compiler.forms import Int, List, Str, Symbol, show, write
from compiler.records import FrozenInstanceError, dataclass, field, replace


@dataclass(frozen=True)
class Point:
    x: int
    y: int = 0
    tags: list = field(default_factory=list, compare=False)
    note: str = field(default="", repr=False)


@dataclass
class Box:
    items: list = field(default_factory=list)


@dataclass(eq=False)
class Node:
    name: str


def test_init_by_position_keyword_and_default():
    assert (Point(1).x, Point(1).y, Point(1, 2).y, Point(y=3, x=1).y) == (1, 0, 2, 3)
    assert Point(1).tags == [] and Point(1).tags is not Point(1).tags  # a fresh default each time
    for args, kwargs in (((), {}), ((1, 2, [], "", 5), {}), ((1,), {"z": 2}), ((1,), {"x": 2})):
        with pytest.raises(TypeError):
            Point(*args, **kwargs)


def test_equality_hash_repr_and_frozen():
    assert Point(1, 2, ["a"]) == Point(1, 2, ["b"]) and hash(Point(1, 2)) == hash(Point(1, 2, ["x"]))
    assert Point(1) != Point(2) and Point(1) != (1, 0)
    assert repr(Point(1, 2)) == "Point(x=1, y=2, tags=[])"
    with pytest.raises(FrozenInstanceError):
        Point(1).x = 2
    assert Box() == Box() and Box.__hash__ is None  # mutable and comparable: unhashable, as dataclasses
    a, same = Node("a"), []
    same.append(a)
    assert a != Node("a") and a == same[0]  # identity equality, as with eq=False


def test_replace_ours_and_the_standard_librarys():
    p = Point(1, 2, ["t"], "n")
    for copy in (replace(p, y=5), dataclasses.replace(p, y=5)):
        assert (copy.x, copy.y, copy.tags, copy.note) == (1, 5, ["t"], "n")


def test_forms_compare_by_value_not_location():
    here, there = Loc("f", 1, 1), Loc("f", 9, 9)
    assert Symbol("A", here) == Symbol("A", there) and Int(1, here) == Int(1) and Str("s") == Str("s", there)
    assert List((Symbol("A"), Int(1))) == List((Symbol("A", there), Int(1, here)))
    assert Symbol("A") != Str("A") and Int(1) != Symbol("1")
    assert len({Symbol("A", here), Symbol("A", there)}) == 1 and Loc("f", 1, 1) == here


def test_text_of_a_shared_tree_is_bounded():
    tree = Int(1)
    for _level in range(60):  # 2^60 leaves, 60 distinct nodes
        tree = List((tree, tree))
    assert len(show(tree)) <= 200 and show(tree).endswith("...")
    assert "(...)" in show(tree, limit=10_000)  # below 8 levels
    assert write(tree, 1000) is None
    assert len(str(tree)) <= 200 and len(repr(tree)) <= 1010
    assert write(List((Symbol("A"), Str('q"'), Int(-1))), 100) == '(a "q\\"" -1)'

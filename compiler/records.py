"""The subset of ``dataclasses`` the compiler's value classes use, at a fraction of its cost.

In: a class body of annotated fields, declared exactly as with the standard library:
``@dataclass``, ``@dataclass(frozen=True)``, ``@dataclass(eq=False)``, fields with plain
defaults or ``field(default=..., default_factory=..., compare=False, repr=False)``.
Out: the class with ``__init__`` (positional or keyword arguments, in field order),
``__repr__`` and ``__eq__`` over the compared fields, ``__hash__`` when frozen, assignment
refused when frozen (``FrozenInstanceError``), and ``replace(obj, **changes)``.

Why not the standard module: every compile runs in a fresh process (the CLI, Ansible's
workers), and importing ``dataclasses`` (which imports ``inspect``) and generating source code
for each of the compiler's ~30 classes costs about 20 ms, more than compiling a program. Here
the methods are closures over the field names, built without ``exec``.
"""

from __future__ import annotations

from operator import attrgetter

_MISSING = object()


class FrozenInstanceError(AttributeError):
    pass


class Field:
    # name, init and _field_type as in dataclasses.Field, so that dataclasses.replace() works on
    # these classes too (the tests use it); dataclasses.fields() and asdict() do not.
    __slots__ = ("name", "default", "default_factory", "compare", "repr", "init", "_field_type")

    def __init__(self, default=_MISSING, default_factory=None, compare=True, repr=True):  # noqa: A002
        self.default, self.default_factory, self.compare, self.repr = default, default_factory, compare, repr
        self.name, self.init, self._field_type = "", True, None


def field(*, default=_MISSING, default_factory=None, compare=True, repr=True) -> Field:  # noqa: A002
    return Field(default, default_factory, compare, repr)


def dataclass(cls=None, *, frozen: bool = False, eq: bool = True):
    """Class decorator; ``@dataclass`` or ``@dataclass(frozen=..., eq=...)``."""
    if cls is None:
        return lambda c: _build(c, frozen, eq)
    return _build(cls, frozen, eq)


def _build(cls, frozen: bool, eq: bool):
    fields: dict[str, Field] = {}
    for name in cls.__dict__.get("__annotations__", {}):
        value = cls.__dict__.get(name, _MISSING)
        fields[name] = value if isinstance(value, Field) else Field(default=value)
        fields[name].name = name
        if isinstance(value, Field):
            if value.default is _MISSING:
                delattr(cls, name)
            else:
                setattr(cls, name, value.default)
    names = tuple(fields)
    known = frozenset(names)
    optional = tuple((name, f.default, f.default_factory) for name, f in fields.items()
                     if f.default is not _MISSING or f.default_factory is not None)
    compared = tuple(name for name, f in fields.items() if f.compare)
    shown = tuple(name for name, f in fields.items() if f.repr)
    qualname = cls.__qualname__

    count = len(names)

    def __init__(self, *args, **kwargs):
        if len(args) == count and not kwargs:  # the usual call: every field, in order
            self.__dict__.update(zip(names, args))
            return
        if len(args) > count:
            raise TypeError(f"{qualname}() takes {len(names)} arguments, got {len(args)}")
        values = dict(zip(names, args))
        for key, value in kwargs.items():
            if key not in known or key in values:
                raise TypeError(f"{qualname}() got an {'unexpected' if key not in known else 'extra'} "
                                f"argument {key!r}")
            values[key] = value
        if len(values) < len(names):
            for name, default, factory in optional:
                if name not in values:
                    values[name] = factory() if factory is not None else default
            if len(values) < len(names):
                raise TypeError(f"{qualname}() missing {', '.join(n for n in names if n not in values)}")
        self.__dict__.update(values)

    def __repr__(self):
        return f"{qualname}({', '.join(f'{n}={getattr(self, n)!r}' for n in shown)})"

    cls.__init__ = __init__
    cls.__repr__ = __repr__
    cls.__dataclass_fields__ = fields
    if eq:
        key = attrgetter(*compared) if compared else lambda self: ()

        def __eq__(self, other):
            if other.__class__ is not self.__class__:
                return NotImplemented
            return key(self) == key(other)

        cls.__eq__ = __eq__
        cls.__hash__ = (lambda self: hash(key(self))) if frozen else None
    if frozen:
        def refuse(self, name, *value):
            raise FrozenInstanceError(f"cannot assign to field {name!r} of a frozen {qualname}")

        cls.__setattr__ = refuse
        cls.__delattr__ = refuse
    return cls


def replace(obj, **changes):
    """A copy of ``obj`` with ``changes`` applied."""
    values = {name: getattr(obj, name) for name in obj.__dataclass_fields__}
    values.update(changes)
    return obj.__class__(**values)

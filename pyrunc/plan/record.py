"""Plain value classes for the create path, without dataclasses.

Importing :mod:`dataclasses` pulls in inspect, ast, tokenize and more, and
``@dataclass`` generates and compiles code for every decorated class at import:
together some 20 ms on every `create`.  These two bases give what the planner's
classes used from it: ``__eq__`` and ``__repr__`` over the fields named in
``__slots__`` (in that order, compared only with the same class), and for
:class:`FrozenRecord` a ``__hash__`` over the same values.  Each class writes its
own ``__init__``.  Frozen classes are not enforced read-only; nothing assigns to
their fields.
"""

from __future__ import annotations


class Record:
    """Equality and repr over ``__slots__``; unhashable, like a mutable dataclass."""

    __slots__: tuple[str, ...] = ()

    def _key(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Record) or other.__class__ is not self.__class__:
            return NotImplemented
        return self._key() == other._key()

    __hash__ = None  # type: ignore[assignment]  # mutable: unhashable, as with eq=True

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"{type(self).__qualname__}({fields})"


class FrozenRecord(Record):
    """A :class:`Record` that is hashable, like a frozen dataclass."""

    __slots__ = ()

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(self._key())

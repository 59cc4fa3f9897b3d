"""Attributes of a facade that one of its parts holds.

``JiraSimulator`` keeps its settings in a ``Tenant`` and what it stores in a
``Store``, yet offers them as its own attributes (``simulator.builds``,
``simulator.permissions = ...``), as it always has.
"""

from __future__ import annotations

from typing import Generic, TypeVar, cast, overload

__all__ = ["Forwarded"]

T = TypeVar("T")


class Forwarded(Generic[T]):
    """An attribute of the simulator that one of its parts holds, under the same name.

    ``part`` names the simulator's attribute that holds the part. Only a
    ``writable`` one may be assigned; the part converts and checks the value
    (a :class:`Tenant`'s fields do, as its ``__init__`` arguments).
    """

    def __init__(self, part: str, *, writable: bool = False) -> None:
        self._part = part
        self._writable = writable
        self._name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name

    @overload
    def __get__(self, instance: None, owner: type) -> Forwarded[T]: ...
    @overload
    def __get__(self, instance: object, owner: type) -> T: ...
    def __get__(self, instance: object | None, owner: type) -> T | Forwarded[T]:
        if instance is None:
            return self
        return cast(T, getattr(getattr(instance, self._part), self._name))

    def __set__(self, instance: object, value: T) -> None:
        if not self._writable:
            raise AttributeError(f"{self._name} cannot be replaced, only changed")
        setattr(getattr(instance, self._part), self._name, value)

"""A registry mapping the names used in YAML (``platform: local``) to implementations.

Each plugin module registers one class under its ``name``; lookups of unknown names raise an
``InputError`` listing what is available, so a typo in a spec is caught before anything changes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from zerodown.core.errors import InputError

__all__ = ["Registry"]

T = TypeVar("T")


class Registry(Generic[T]):
    """Named factories of one kind of plugin (platforms, routers, judges ...)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._factories: dict[str, Callable[[], T]] = {}

    def register(self, name: str, factory: Callable[[], T]) -> None:
        if name in self._factories:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._factories[name] = factory

    def names(self) -> list[str]:
        return sorted(self._factories)

    def create(self, name: str) -> T:
        try:
            factory = self._factories[name]
        except KeyError:
            known = ", ".join(self.names()) or "none"
            raise InputError(f"unknown {self.kind} {name!r} (known: {known})") from None
        return factory()

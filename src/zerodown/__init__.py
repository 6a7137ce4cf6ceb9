"""zerodown: zero-downtime deployments and day-2 operations.

The public Python API is what this module exports; ``tests/unit/test_public_api.py`` pins it.
``Zerodown`` (the use cases behind the CLI and the HTTP API) is imported on first use so that
``import zerodown`` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from zerodown.core.errors import (
    InputError,
    LockHeldError,
    NotFoundError,
    OperationFailedError,
    PreflightError,
    RefusedError,
    RolledBackError,
    SpecError,
    TemporaryError,
    ZerodownError,
)
from zerodown.spec import LoadedSpec, ServiceSpec, load_spec, parse_spec

if TYPE_CHECKING:
    from zerodown.service import Zerodown

__version__ = "0.1.0"

__all__ = [
    "InputError",
    "LoadedSpec",
    "LockHeldError",
    "NotFoundError",
    "OperationFailedError",
    "PreflightError",
    "RefusedError",
    "RolledBackError",
    "ServiceSpec",
    "SpecError",
    "TemporaryError",
    "Zerodown",
    "ZerodownError",
    "__version__",
    "load_spec",
    "parse_spec",
]


def __getattr__(name: str) -> Any:
    if name == "Zerodown":
        from zerodown.service import Zerodown

        return Zerodown
    raise AttributeError(f"module 'zerodown' has no attribute {name!r}")

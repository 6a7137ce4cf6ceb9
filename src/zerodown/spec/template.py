"""The commented starter spec that ``zerodown init`` writes (``template.yaml`` in this package).

The template is a valid spec in its own right (a test validates it), so a new user starts from
something that deploys, and every key shown is explained where it stands.
"""

from __future__ import annotations

import re
from importlib.resources import files

from zerodown.core.errors import InputError
from zerodown.spec.fields import SERVICE_NAME_PATTERN

__all__ = ["template_text"]

_SERVICE_LINE = re.compile(r"^service: web\b", re.MULTILINE)


def template_text(service: str = "web") -> str:
    """The template with ``service`` as the service name; ``InputError`` for an invalid name."""
    if not SERVICE_NAME_PATTERN.fullmatch(service):
        raise InputError(
            f"invalid service name {service!r}: use lowercase letters, digits and '-', "
            "starting with a letter, at most 40 characters"
        )
    text = files("zerodown.spec").joinpath("template.yaml").read_text(encoding="utf-8")
    return _SERVICE_LINE.sub(f"service: {service}", text, count=1)

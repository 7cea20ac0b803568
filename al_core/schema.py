"""Typed settings with a default, a valid range and one line of help, checked in one place.

Used for every sampler's options (declared next to the sampler, in its registry entry) and for
the pipeline's ``params.yaml``: one ``Setting`` says what a value may be, ``Setting.check``
says, naming the setting, what was expected and what arrived (scikit-learn's parameter
constraints in spirit).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from al_core.errors import InputError

NUMBER = (int, float)


def _always(value: Any) -> bool:
    return True


@dataclass(frozen=True)
class Setting:
    """One setting: its type(s), default, valid range and help.

    kind: accepted type(s); ``bool`` is never taken for ``int``, an ``int`` is taken for ``float``.
    default: the value when the caller gives none (None: no value, e.g. an array the caller may pass).
    valid / expected: a predicate on a well-typed value and the words for what it accepts (">= 1").
    settable: False for values a caller computes (arrays), which ``params.yaml`` cannot hold.
    """

    kind: type | tuple[type, ...]
    default: Any = None
    valid: Callable[[Any], bool] = _always
    expected: str = ""
    help: str = ""
    settable: bool = True

    @property
    def kinds(self) -> tuple[type, ...]:
        return self.kind if isinstance(self.kind, tuple) else (self.kind,)

    def type_name(self) -> str:
        kinds = self.kinds
        return " or ".join("number" if kind is float else kind.__name__ for kind in kinds if not (kind is int and float in kinds))

    def check(self, name: str, value: Any, source: str = "") -> Any:
        """Return ``value`` if it is of this setting's type and range, else raise InputError naming ``name``."""
        prefix = f"{source}: " if source else ""
        kinds = self.kinds
        if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
            raise InputError(f"{prefix}{name} must be {self.type_name()}, got {value!r}")
        if not self.valid(value):
            raise InputError(f"{prefix}{name} must be {self.expected}, got {value!r}")
        return value

    def describe(self) -> str:
        """``int >= 1, default 10``: for listings such as ``al samplers``."""
        parts = [self.type_name() + (f" {self.expected}" if self.expected else "")]
        if self.default is not None:
            parts.append(f"default {self.default}")
        return ", ".join(parts)


def positive(kind=int, **more) -> Setting:
    return Setting(kind, valid=lambda value: value > 0, expected="> 0", **more)


def at_least(bound, kind=int, **more) -> Setting:
    return Setting(kind, valid=lambda value: value >= bound, expected=f">= {bound}", **more)


def one_of(*choices: str, **more) -> Setting:
    return Setting(str, valid=lambda value: value in choices, expected=f"one of {', '.join(choices)}", **more)


def resolve(settings: Mapping[str, Setting], given: Mapping[str, Any] | None, owner: str) -> dict[str, Any]:
    """Every setting of ``settings``: the checked value from ``given`` or its default.

    Raises InputError for a key of ``given`` that ``settings`` does not declare (``owner`` names
    whose settings they are, e.g. "sampler 'base'") or a value of the wrong type or range.
    """
    given = dict(given or {})
    unknown = sorted(set(given) - set(settings))
    if unknown:
        raise InputError(f"{owner} takes no option(s) {unknown}; it takes {sorted(settings) or 'none'}")
    return {
        name: (setting.check(f"option {name!r} of {owner}", given[name]) if name in given else setting.default)
        for name, setting in settings.items()
    }

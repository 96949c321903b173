"""The detectors' exceptions, one tree.

::

    DetectorError                       base of everything raised on purpose by ``detectors``
    ├── UnknownNameError (KeyError)     a method / metric / check name that is not registered
    ├── InvalidParameterError (ValueError)
    │                                   a parameter outside its allowed range or choices
    ├── NotFittedError (RuntimeError)   ``score`` / ``estimate`` called before ``fit``
    └── MissingOptionalDependency (ImportError)
                                        an optional extra (e.g. ``driftwatch[alibi]``) is not installed

Too little data is *not* an error: detectors return a ``no_data`` result for it (``drifted`` or
``value`` is ``None``). Errors name the field, the value and the allowed choices, so a bad
monitor configuration can be fixed from the message alone.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = [
    "DetectorError",
    "InvalidParameterError",
    "MissingOptionalDependency",
    "NotFittedError",
    "UnknownNameError",
]


class DetectorError(Exception):
    """Base class of every exception raised on purpose by ``detectors``."""


class UnknownNameError(DetectorError, KeyError):
    """A name (method, metric, check) that is not registered.

    Parameters
    ----------
    kind
        What was looked up, e.g. ``"drift method"``.
    name
        The name given.
    valid
        The registered names; listed in the message, sorted.
    """

    def __init__(self, kind: str, name: object, valid: Iterable[str]) -> None:
        self.kind = kind
        self.name = name
        self.valid = tuple(sorted(valid))
        super().__init__(kind, name)

    def __str__(self) -> str:
        # KeyError.__str__ would repr() the args; give the readable message instead.
        return f"unknown {self.kind} {self.name!r}; valid: {', '.join(self.valid)}"


class InvalidParameterError(DetectorError, ValueError):
    """A parameter outside its allowed range or set of choices.

    Parameters
    ----------
    field
        The parameter's name.
    value
        The value given.
    allowed
        A human-readable description of what is allowed, e.g. ``"an integer >= 2"``.
    """

    def __init__(self, field: str, value: object, allowed: str) -> None:
        self.field = field
        self.value = value
        self.allowed = allowed
        super().__init__(f"invalid {field}={value!r}: expected {allowed}")


class NotFittedError(DetectorError, RuntimeError):
    """A fitted detector or estimator used before ``fit``."""

    def __init__(self, owner: str) -> None:
        self.owner = owner
        super().__init__(f"{owner} is not fitted: call fit(reference) first")


class MissingOptionalDependency(DetectorError, ImportError):
    """An optional dependency is not installed; the message names the install command.

    Parameters
    ----------
    package
        The distribution that is missing, e.g. ``"alibi-detect"``.
    extra
        The Driftwatch extra that installs it, e.g. ``"alibi"``.
    """

    def __init__(self, package: str, extra: str) -> None:
        self.package = package
        self.extra = extra
        self.install_command = f"pip install 'driftwatch[{extra}]'"
        super().__init__(
            f"{package} is not installed; it is optional. Install it with: {self.install_command}",
            name=package,
        )

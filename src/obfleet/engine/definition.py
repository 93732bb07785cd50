"""Subtask definitions: what flow authors subclass, and the registry the runner resolves them by.

A subtask is stored by its class name (`module.QualName`, OCP's `className`); any engine node
resolves it back to the class, importing the module if this process has not yet done so.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from obfleet.engine.context import SubtaskContext

DEFAULT_TIMEOUT_S = 1800

_registry: dict[str, type[Subtask]] = {}
# Classes that moved: the name a task stored -> the name the class has now (see `moved`).
_moved: dict[str, str] = {}


class Subtask:
    """One step of a task. Subclass it, set the class attributes, implement `execute`.

    Both methods must be idempotent: the engine runs a subtask again when its runner died, so
    check before you act (is the package already there? is the process already running?).
    """

    name: ClassVar[str] = ""  # shown as the subtask's name; defaults to the class name
    description: ClassVar[str] = ""  # defaults to `name`, as in OCP's samples
    timeout: ClassVar[int] = DEFAULT_TIMEOUT_S  # seconds; the run fails when it is exceeded
    prohibit_rollback: ClassVar[bool] = False  # True: what execute did cannot be undone
    _named: ClassVar[bool] = False  # `name` was given, by this class or a base

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        # A step specialised for one task (a shared step told where it acts) keeps the name the
        # shared step was given; a class that no one named gets its own class name.
        if cls.__dict__.get("name"):
            cls._named = True
        elif not cls._named:
            cls.name = cls.__name__
        if not cls.__dict__.get("description"):
            cls.description = cls.name
        _registry[class_name(cls)] = cls

    async def execute(self, ctx: SubtaskContext) -> None:
        raise NotImplementedError(f"{class_name(type(self))} does not implement execute")

    async def rollback(self, ctx: SubtaskContext) -> None:
        """Undo what `execute` did; it must also cope with a partial or absent execution."""


def class_name(cls: type[Subtask]) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


class UnknownSubtaskClass(LookupError):
    pass


def moved(names: dict[str, str]) -> None:
    """Record subtask classes that moved (old stored name -> new name), so that tasks already
    in a metadb (a FAILED one waiting for a retry) still resolve. The package that moved them
    records them; `resolve` finds it by importing what is left of the old module path."""
    _moved.update(names)


def _import_module_of(name: str) -> None:
    module, _, _ = name.rpartition(".")
    while module:
        try:
            importlib.import_module(module)
            return
        except ImportError:
            module, _, _ = module.rpartition(".")  # nested in a class, or a module that moved


def resolve(name: str) -> type[Subtask]:
    """The subtask class stored as `name`, importing its module on first use."""
    found = _registry.get(name)
    if found is None:
        _import_module_of(name)
        found = _registry.get(name)
    if found is None and name in _moved:
        return resolve(_moved[name])
    if found is None:
        raise UnknownSubtaskClass(f"no subtask class {name} in this obfleet process")
    return found

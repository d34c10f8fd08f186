"""Import compatibility for habitat-lab on machines without habitat-sim.

habitat-lab 0.3.3 imports ``magnum`` and ``habitat_sim`` at module level in files that
``import habitat`` always loads (e.g. ``habitat/sims/habitat_simulator/object_state_machine.py``),
so on a pip-only machine ``import habitat`` fails before any simulator is chosen.

:func:`install` adds one :class:`importlib.abc.MetaPathFinder` to ``sys.meta_path`` that serves
stand-in modules for exactly the top-level packages that are NOT importable (``magnum`` and/or
``habitat_sim``, and their sub-modules). It is called by ``habitat_fih/__init__.py`` before anything
imports habitat. When the real package is importable nothing is replaced.

A stand-in module answers every attribute with a stand-in class, so module-level code such as
``class HabitatSim(habitat_sim.Simulator)``, annotations like ``mn.Vector3`` or defaults like
``MotionType.KINEMATIC`` import fine; a call made from a module or class body (an import-time
constant such as ``mn.Vector3.zero_init()``) returns an inert placeholder. Any other *use* (calling
or instantiating a stand-in at run time, e.g. building habitat's ``Sim-v0``) raises :class:`HabitatSimUnavailableError`, an ``ImportError`` whose message
names the embedded simulator ``FIHSim-v0`` and the conda install of habitat-sim.

Real exception classes are provided where habitat-lab catches them
(``habitat_sim.errors.GreedyFollowerError``), so ``except`` clauses keep working; FIHSim-v0's greedy
follower raises that same class.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types

__all__ = [
    "HabitatSimUnavailableError",
    "STAND_IN_ROOTS",
    "install",
    "is_stand_in",
    "stand_in_roots",
]

#: Top-level packages that may be served by stand-ins (corrade ships with magnum's bindings).
STAND_IN_ROOTS = ("magnum", "corrade", "habitat_sim")

_MESSAGE = (
    "'{name}' needs the real habitat-sim, which is not installed here (it is distributed through "
    "conda: `conda install habitat-sim -c conda-forge -c aihabitat`). On a pip-only machine use the "
    "embedded CPU simulator instead: habitat.simulator.type=FIHSim-v0."
)


class HabitatSimUnavailableError(ImportError):
    """Raised when code tries to use a stand-in for ``magnum`` / ``habitat_sim``."""


class GreedyFollowerError(RuntimeError):
    """Stand-in for ``habitat_sim.errors.GreedyFollowerError`` (raised when no path exists)."""


class _StandInMeta(type):
    """Metaclass of stand-in classes: attribute chains resolve, use raises."""

    def __getattr__(cls, name: str):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        child = _stand_in_class(f"{cls.__qualname__}.{name}", cls.__module__)
        setattr(cls, name, child)
        return child

    def __call__(cls, *args, **kwargs):
        if is_stand_in(cls) and _called_from_definition(sys._getframe(1)):
            # Module-level constants and class-body defaults (e.g. ``mn.Vector3.zero_init()``
            # in habitat's dataclasses) get an inert placeholder so the import succeeds. Real
            # classes deriving from a stand-in (habitat's HabitatSim) always raise.
            return type.__call__(cls)
        raise HabitatSimUnavailableError(_MESSAGE.format(name=f"{cls.__module__}.{cls.__qualname__}"))

    def __repr__(cls) -> str:
        if not is_stand_in(cls):  # a real class deriving from a stand-in, e.g. HabitatSim
            return type.__repr__(cls)
        return f"<habitat_fih stand-in {cls.__module__}.{cls.__qualname__}>"

    # Stand-ins are used in type annotations such as ``mn.Vector3 | None``.
    def __or__(cls, other):
        return cls

    def __ror__(cls, other):
        return cls


def _called_from_definition(frame: types.FrameType) -> bool:
    """True when ``frame`` runs a module body or a class body (i.e. during an import)."""
    code_name = frame.f_code.co_name
    if code_name == "<module>":
        return True
    local_names = frame.f_locals
    return "__module__" in local_names and "__qualname__" in local_names


def _instance_getattr(self, name: str):
    if name.startswith("__") and name.endswith("__"):
        raise AttributeError(name)
    return getattr(type(self), name)


def _stand_in_class(qualname: str, module: str) -> type:
    ns = {
        "__module__": module,
        "__qualname__": qualname,
        "_habitat_fih_stand_in": True,
        "__getattr__": _instance_getattr,
    }
    return _StandInMeta(qualname.rsplit(".", 1)[-1], (), ns)


class _StandInModule(types.ModuleType):
    """A module whose unknown attributes are stand-in classes."""

    def __getattr__(self, name: str):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        # Sub-packages imported by attribute access (``habitat_sim.physics.X``) become modules.
        full = f"{self.__name__}.{name}"
        if full in _ABSENT:
            raise AttributeError(name)
        if full in sys.modules:
            return sys.modules[full]
        if full in _SPECIALS:  # e.g. ``habitat_sim.errors`` used without importing it
            return importlib.import_module(full)
        value = _stand_in_class(name, self.__name__)
        setattr(self, name, value)
        return value


# Optional habitat-sim modules that habitat-lab imports inside ``try/except ImportError`` and
# then USES whenever the import succeeded (habitat.utils.profiling_wrapper calls
# profiling_utils on every RLEnv step): these must stay absent so habitat takes its fallback.
_ABSENT = frozenset({"habitat_sim.utils.profiling_utils"})

# Real objects some habitat-lab modules rely on at import or ``except`` time.
_SPECIALS: dict[str, dict[str, object]] = {
    "habitat_sim.errors": {"GreedyFollowerError": GreedyFollowerError},
}


class _StandInLoader(importlib.abc.Loader):
    def create_module(self, spec):
        return _StandInModule(spec.name)

    def exec_module(self, module) -> None:
        module.__path__ = []  # every stand-in is a package so sub-modules import
        module.__file__ = None
        module._habitat_fih_stand_in = True
        for key, value in _SPECIALS.get(module.__name__, {}).items():
            setattr(module, key, value)
        parent, _, child = module.__name__.rpartition(".")
        if parent:
            setattr(sys.modules[parent], child, module)


class _StandInFinder(importlib.abc.MetaPathFinder):
    def __init__(self, roots: tuple[str, ...]) -> None:
        self.roots = roots
        self._loader = _StandInLoader()

    def find_spec(self, fullname, path=None, target=None):
        if fullname.split(".", 1)[0] not in self.roots or fullname in _ABSENT:
            return None
        return importlib.machinery.ModuleSpec(fullname, self._loader, is_package=True)


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def stand_in_roots() -> tuple[str, ...]:
    """The packages currently served by stand-ins (empty when habitat-sim is installed)."""
    for finder in sys.meta_path:
        if isinstance(finder, _StandInFinder):
            return finder.roots
    return ()


def is_stand_in(obj: object) -> bool:
    """True for a stand-in module or class itself (not for real classes deriving from one)."""
    return bool(vars(obj).get("_habitat_fih_stand_in", False)) if hasattr(obj, "__dict__") else False


def install() -> tuple[str, ...]:
    """Serve stand-ins for whichever of ``magnum`` / ``habitat_sim`` is not importable.

    Idempotent. Returns the roots served by stand-ins. Appended to the END of ``sys.meta_path``
    so a real package found by any other finder always wins.
    """
    current = stand_in_roots()
    if current:
        return current
    missing = tuple(root for root in STAND_IN_ROOTS if not _importable(root))
    if missing:
        sys.meta_path.append(_StandInFinder(missing))
    return missing

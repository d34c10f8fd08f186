"""Start-up hook that lets programs which import habitat directly run without habitat-sim.

``python -m habitat_baselines.run --config-name=fih/...`` (or any script starting with ``import
habitat``) imports habitat-lab before anything of habitat-fih, and habitat-lab imports ``magnum``
/ ``habitat_sim`` at module level; ``python -m habitat_fih.run`` avoids that by importing
``habitat_fih`` (whose first act is ``habitat_fih.compat.install()``) first. This module gives
every program that same order, on machines without habitat-sim only:

* The installed ``habitat_fih_autocompat.pth`` (written into site-packages by setup.py's
  ``build_pth``, for wheel and editable installs alike) runs :func:`install` at interpreter
  start-up. That only puts :class:`AutoCompatFinder` first on ``sys.meta_path``: no other import,
  no file-system look-up, so a program that never imports habitat pays well under a millisecond
  (this module's own import) and loads nothing of habitat-fih.
* The finder answers only for the first import of ``habitat`` or ``habitat_baselines``. It
  steps aside for good (removes itself) when ``habitat_fih`` is already being imported (it
  handles compat itself) or when both ``magnum`` and ``habitat_sim`` are found
  (``importlib.util.find_spec``, nothing is imported): with the real habitat-sim nothing changes.
* Otherwise it returns a spec whose loader first imports ``habitat_fih`` (the stand-ins, then the
  FIH task, FIHSim-v0, the config search path and the ``fih`` trainer; that import loads the
  real ``habitat`` / ``habitat_baselines`` itself) and then hands back the module that import
  made, so nothing is executed twice. (Importing habitat_fih in ``find_spec`` and returning None
  would not do: the import system would then load ``habitat`` a second time, from its file.)

``HABITAT_FIH_NO_AUTOCOMPAT=1`` in the environment switches the hook off (``import habitat``
then fails on ``magnum`` as it would without habitat-fih).
"""

import os
import sys

# Start-up cost: this module is imported by every interpreter of the environment, so it imports
# only ``os`` / ``sys`` (loaded by site.py already); importlib is imported when the finder acts,
# the annotations are strings and their names are imported for type checkers only.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from importlib.machinery import ModuleSpec
    from types import ModuleType

__all__ = ["OFF_SWITCH", "AutoCompatFinder", "install", "uninstall"]

#: Environment variable: ``1`` keeps the hook out of ``sys.meta_path``.
OFF_SWITCH = "HABITAT_FIH_NO_AUTOCOMPAT"

#: The imports the finder answers for (whichever of them comes first).
TRIGGERS = frozenset({"habitat", "habitat_baselines"})

#: habitat-sim counts as installed when all of these are found.
SIM_PACKAGES = ("magnum", "habitat_sim")


class AutoCompatFinder:
    """``sys.meta_path`` finder acting once, on the first import of a :data:`TRIGGERS` name."""

    def find_spec(
        self,
        fullname: str,
        path: object = None,
        target: "ModuleType | None" = None,
    ) -> "ModuleSpec | None":
        if fullname not in TRIGGERS:
            return None
        if "habitat_fih" in sys.modules or _sim_installed():
            uninstall()
            return None
        real = _find_elsewhere(fullname, path, target)
        if real is None:  # habitat-lab is not installed: its ordinary ModuleNotFoundError
            return None
        import importlib.machinery

        spec = importlib.machinery.ModuleSpec(
            fullname,
            _ImportFIHFirst(),
            origin=real.origin,
            is_package=real.submodule_search_locations is not None,
        )
        spec.submodule_search_locations = real.submodule_search_locations
        return spec


class _ImportFIHFirst:
    """Loader: imports ``habitat_fih`` (which imports the real module), hands that module back."""

    def __init__(self) -> None:
        self._real_spec: ModuleSpec | None = None

    def create_module(self, spec: "ModuleSpec") -> "ModuleType":
        import importlib

        uninstall()  # the imports below are ordinary ones
        importlib.import_module("habitat_fih")
        module = importlib.import_module(spec.name)  # habitat_fih imported it (or does now)
        self._real_spec = module.__spec__
        return module

    def exec_module(self, module: "ModuleType") -> None:
        # The module ran inside create_module; module_from_spec has since set our spec on it.
        module.__spec__ = self._real_spec


def _sim_installed() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(name) is not None for name in SIM_PACKAGES)


def _find_elsewhere(
    fullname: str, path: object, target: "ModuleType | None"
) -> "ModuleSpec | None":
    """The spec the other ``sys.meta_path`` finders give `fullname`."""
    for finder in sys.meta_path:
        if isinstance(finder, AutoCompatFinder) or not hasattr(finder, "find_spec"):
            continue
        spec = finder.find_spec(fullname, path, target)
        if spec is not None:
            return spec
    return None


def install() -> bool:
    """Put :class:`AutoCompatFinder` first on ``sys.meta_path`` (the ``.pth`` calls this).

    Idempotent; does nothing when ``HABITAT_FIH_NO_AUTOCOMPAT=1``. Returns whether the finder is
    installed.
    """
    if os.environ.get(OFF_SWITCH) == "1":
        return False
    if not any(isinstance(finder, AutoCompatFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, AutoCompatFinder())
    return True


def uninstall() -> None:
    """Take every :class:`AutoCompatFinder` off ``sys.meta_path``.

    Binds a new list: the import system may be iterating over the current one (a finder calls
    this from ``find_spec``), and removing an entry in place would make it skip the next finder.
    """
    sys.meta_path = [f for f in sys.meta_path if not isinstance(f, AutoCompatFinder)]

"""Scene frames: which way is up in a scene file, decided as habitat-sim v0.2.2 decides it.

Habitat's world frame is up = +Y, front = -Z, metres. A scene file is loaded as a *stage* whose
``up`` / ``front`` vectors say where the file's up and front point; the mesh is rotated so that
they land on world +Y and -Z. This module finds those vectors for a scene path (and an optional
scene-dataset config), and gives the rotation to habitat's world frame.

Rules (habitat-sim tag ``v0.2.2``, commit 011191f; file names under ``src/esp/``):

1. Which stage a scene path names (``metadata/MetadataMediator.cpp``,
   ``getSceneInstanceAttributesByName``; scene instances are not supported here):

   a. with a scene dataset, the first (sorted) stage handle of the dataset that contains the
      scene string, compared case-insensitively (``ManagedContainerBase.cpp``,
      ``getHandlesBySubStringPerTypeInternal``);
   b. otherwise the scene path itself: if it ends in ``stage_config.json`` it IS the stage config
      (the render asset is named inside); else the sibling ``<stem>.stage_config.json`` (the last
      extension replaced, ``ManagedFileBasedContainer.h``, ``convertFilenameToPassedExt``) is used
      when it exists (``AttributesManagerBase.h``, ``createFromJsonOrDefaultInternal``);
   c. else the file itself, with default attributes.

2. Frame of a stage WITHOUT a config (``managers/StageAttributesManager.cpp``,
   ``initNewObjectInternal`` and ``setDefaultAssetNameBasedAttributes``), by how the render-asset
   name ends (case-sensitive, a file-name test, not the format): ``*.glb`` is taken for an MP3D
   mesh with gravity -Z: up = (0, 0, 1), front = (0, 1, 0), so world (x, y, z) = (file x, file
   z, -file y) (MP3D, Gibson, HM3D files are such); ``*mesh.ply`` (Replica's PTex ``mesh.ply``)
   is Z-up likewise; anything else (``.gltf``, ``.obj``, other ``.ply``, ``.GLB``) is Y-up:
   up = (0, 1, 0), front = (0, 0, -1). These name-based defaults apply ONLY when the active scene
   dataset has no ``stages.default_attributes``; with one, a config-less stage takes the
   defaults' frame instead (``constructFromDefault``, then ``setFrame = false``).

3. Frame of a stage WITH a config (``*.stage_config.json``): ``up``, ``front``, ``origin``,
   ``units_to_meters`` from the json (``managers/AbstractObjectAttributesManagerBase.h``,
   ``loadAbstractObjectAttributesFromJson``; ``origin`` in ``StageAttributesManager.cpp``,
   ``setValsFromJSONDoc``), over the dataset's ``stages.default_attributes`` when there are any,
   over the attributes' constructor defaults (``attributes/ObjectAttributes.cpp``: up (0, 1, 0),
   front (0, 0, -1), origin 0, units_to_meters 1). The name-based rule of 2 is NOT applied to a
   config's render asset (configs are built with ``builtFromConfig = true`` and
   ``setJSONAssetHandleAndType`` passes ``setFrame = false``): a stage config naming a ``.glb``
   without ``up`` / ``front`` loads it Y-up. ``render_asset`` (else ``collision_asset``) is
   joined to the config's directory (an absolute path stays as it is).

4. Scene dataset (``managers/SceneDatasetAttributesManager.cpp``, ``readDatasetJSONCell``): the
   value "default" (habitat's ``habitat.simulator.scene_dataset`` default) is the empty built-in
   dataset; a name not containing ``scene_dataset_config.json`` gets that extension. In its
   ``stages`` cell, ``default_attributes`` become the base of every stage built afterwards;
   ``paths`` maps an extension to a list of paths relative to the dataset's directory, each a
   glob (``io/Io.cpp``, ``globDirs``); a directory is listed one level deep for files ending in
   the extension. A key containing ``.json`` loads ``*.stage_config.json`` files (handle = the
   config); any other key (``.glb``) loads assets (handle = their sibling stage config when one
   exists, else the asset path). ``stages.configs`` overrides are not supported (ignored).

5. How the frame is applied (``assets/ResourceManager.cpp``, ``createStageAssetInfosFromAttributes``
   and ``buildFrameFromAttributes``; ``geo/CoordinateFrame.cpp``; ``assets/MeshMetaData.h``,
   ``setRootFrameOrientation``): the rotation that takes world up (+Y) to ``up`` and then the
   rotated world front (-Z) to ``front`` is inverted and pre-multiplied onto the glTF root, i.e.
   applied after the file's own node transforms: world = R @ (node transforms @ v). That
   rotation is the one whose rows are (front x up, up, -front). ``origin`` and
   ``units_to_meters`` are parsed into the stage (``CoordinateFrame::origin_``,
   ``AssetInfo::virtualUnitToMeters``) but nothing in v0.2.2 reads them back when building the
   render or collision mesh, and a stage's ``scale`` is not passed to its render instance either;
   so here too they are validated and recorded in :class:`SceneFrame` but NOT applied.

Where this module is stricter than habitat-sim (which logs and carries on): malformed json, a
missing dataset or render-asset file, and non-3-vector / zero / non-unit ``up`` / ``front`` are a
``ValueError`` (``FileNotFoundError`` for a missing scene or dataset file) naming the file and the
value; habitat-sim normalises non-unit vectors and silently falls back to Y-up when ``up`` is not
perpendicular to ``front``, both are errors here. The rotation is built in closed form; it equals
habitat-sim's composition of two ``FromTwoVectors`` quaternions except in their 180-degree cases
(``up`` exactly -Y, or ``front`` exactly opposite the rotated default front, e.g. up (0, 1, 0) with
front (0, 0, 1)), where the axis Eigen picks is an implementation detail.
"""

from __future__ import annotations

import glob
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "SceneFrame", "ResolvedScene", "Y_UP", "Z_UP", "HABITAT_UP", "HABITAT_FRONT",
    "STAGE_CONFIG_EXT", "SCENE_DATASET_CONFIG_EXT", "name_based_frame", "resolve_scene",
]

HABITAT_UP: tuple[float, float, float] = (0.0, 1.0, 0.0)
HABITAT_FRONT: tuple[float, float, float] = (0.0, 0.0, -1.0)
STAGE_CONFIG_EXT = "stage_config.json"
SCENE_DATASET_CONFIG_EXT = "scene_dataset_config.json"

_UNIT_TOL = 1e-3  # |length - 1| allowed for up / front
_ORTHO_TOL = 1e-4  # |cos(angle)| allowed between up and front
_FRAME_KEYS = ("up", "front", "origin", "units_to_meters")

Vec3 = tuple[float, float, float]


def _fmt(v: Any) -> str:
    """A vector as a short list for messages: [0, 0, 1]."""
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(f"{x:g}" if isinstance(x, float) else repr(x) for x in v) + "]"
    return repr(v)


def _vec3(value: Any, key: str, where: str) -> Vec3:
    if (isinstance(value, (list, tuple)) and len(value) == 3
            and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in value)
            and all(math.isfinite(x) for x in value)):
        return (float(value[0]), float(value[1]), float(value[2]))
    raise ValueError(f"{where}: '{key}' must be a list of 3 finite numbers, got {_fmt(value)}")


@dataclass(frozen=True)
class SceneFrame:
    """Orientation (and recorded origin / units) of a scene file, as a habitat-sim stage has it.

    Attributes:
        up: the file's up direction, a unit 3-vector in file coordinates.
        front: the file's front direction, a unit 3-vector perpendicular to ``up``.
        origin: the stage config's ``origin`` (recorded, not applied: habitat-sim v0.2.2 ignores
            it, see the module docstring).
        units_to_meters: the stage config's ``units_to_meters`` (recorded, not applied).
        source: where the frame came from (rule or config file), for messages and debugging.
    """

    up: Vec3 = HABITAT_UP
    front: Vec3 = HABITAT_FRONT
    origin: Vec3 = (0.0, 0.0, 0.0)
    units_to_meters: float = 1.0
    source: str = "habitat world frame"

    def __post_init__(self) -> None:
        for key in ("up", "front", "origin"):
            object.__setattr__(self, key, _vec3(getattr(self, key), key, self.source))
        for key in ("up", "front"):
            v = getattr(self, key)
            n = math.sqrt(sum(x * x for x in v))
            if n == 0.0:
                raise ValueError(
                    f"{self.source}: '{key}' must be a non-zero unit vector, got {_fmt(v)}")
            if abs(n - 1.0) > _UNIT_TOL:
                raise ValueError(f"{self.source}: '{key}' must be a unit vector, got {_fmt(v)} "
                                 f"(length {n:.4g})")
        cos = sum(a * b for a, b in zip(self.up, self.front, strict=True))
        if abs(cos) > _ORTHO_TOL:
            how = "parallel to" if abs(cos) > 1.0 - _ORTHO_TOL else "not perpendicular to"
            raise ValueError(f"{self.source}: 'up' {_fmt(self.up)} is {how} 'front' "
                             f"{_fmt(self.front)} (dot {cos:.4g}); they must be perpendicular")
        u = self.units_to_meters
        if isinstance(u, bool) or not isinstance(u, (int, float)) or not math.isfinite(u) or u <= 0:
            raise ValueError(
                f"{self.source}: 'units_to_meters' must be a positive number, got {u!r}")
        object.__setattr__(self, "units_to_meters", float(u))

    @property
    def rotation(self) -> np.ndarray:
        """float64 [3, 3] R with world = R @ file: rows (front x up, up, -front)."""
        up = np.asarray(self.up, np.float64)
        up = up / np.linalg.norm(up)
        front = np.asarray(self.front, np.float64)
        front = front - (front @ up) * up  # within _ORTHO_TOL of perpendicular already
        front = front / np.linalg.norm(front)
        return np.stack([np.cross(front, up), up, -front])

    def matrix(self) -> np.ndarray:
        """float64 [4, 4] file-to-world transform as habitat-sim applies it (rotation only)."""
        m = np.eye(4)
        m[:3, :3] = self.rotation
        return m

    @property
    def is_identity(self) -> bool:
        return self.up == HABITAT_UP and self.front == HABITAT_FRONT

    def to_world(self, points: np.ndarray) -> np.ndarray:
        """float64 [N, 3] world positions of file positions ``points`` [N, 3]."""
        pts = np.asarray(points, dtype=np.float64)
        if self.is_identity:
            return pts
        return pts @ self.rotation.T


Y_UP = SceneFrame(source="Y-up (habitat's world frame)")
Z_UP = SceneFrame(up=(0.0, 0.0, 1.0), front=(0.0, 1.0, 0.0), source="Z-up (gravity -Z, MP3D)")


@dataclass(frozen=True)
class ResolvedScene:
    """What a scene path stands for: the mesh file to load and the frame to load it in.

    Attributes:
        asset: the render-asset file (the scene path itself unless a stage config names another).
        frame: the frame to apply to its vertices.
        config: the stage config the asset and frame came from, or None.
    """

    asset: str
    frame: SceneFrame
    config: str | None = None


def name_based_frame(asset: str) -> SceneFrame:
    """Frame habitat-sim gives a stage without any config or dataset defaults (rule 2)."""
    if asset.endswith(".glb"):
        kind = "a *.glb is Z-up (habitat-sim's MP3D default)"
    elif asset.endswith("mesh.ply"):
        kind = "a *mesh.ply is Z-up (habitat-sim's Replica default)"
    else:
        return SceneFrame(source=f"{asset}: no stage config, Y-up (habitat-sim's default)")
    return SceneFrame(up=Z_UP.up, front=Z_UP.front, source=f"{asset}: no stage config, {kind}")


# ---------------------------------------------------------------------- configs
def _read_json(path: str, what: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{what} {path} is not valid json: {e}") from e
    if not isinstance(doc, dict):
        raise ValueError(f"{what} {path} must hold a json object, got {type(doc).__name__}")
    return doc


def _frame_attrs(doc: dict, where: str) -> dict[str, tuple[Any, str]]:
    """The frame keys present in ``doc``, each with the file it came from (checked for type)."""
    out: dict[str, tuple[Any, str]] = {}
    for key in _FRAME_KEYS:
        if key in doc:
            value = doc[key]
            if key != "units_to_meters":
                value = _vec3(value, key, where)
            out[key] = (value, where)
    return out


def _frame_from(attrs: dict[str, tuple[Any, str]], source: str) -> SceneFrame:
    """SceneFrame from merged attributes over the constructor defaults (Y-up, origin 0, units 1)."""
    values = {k: v for k, (v, _) in attrs.items()}
    files = sorted({f for _, f in attrs.values()})
    where = source if len(files) <= 1 else f"{source} (values from {', '.join(files)})"
    return SceneFrame(**values, source=where)


def _with_ext(name: str, ext: str) -> str:
    """habitat-sim's convertFilenameToPassedExt: keep ``name`` if it already contains ``ext``
    (case-insensitive), else replace its last extension by ``.ext``."""
    if ext.lower() in name.lower():
        return name
    return os.path.splitext(name)[0] + "." + ext.lstrip(".")


@dataclass
class _Dataset:
    path: str
    defaults: dict[str, tuple[Any, str]] | None  # None: no stages.default_attributes
    handles: list[str]  # registered stage handles: stage configs or asset paths


def _load_dataset(name: str) -> _Dataset:
    path = _with_ext(name, SCENE_DATASET_CONFIG_EXT)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"scene dataset config not found: {path} "
                                f"(habitat.simulator.scene_dataset = {name!r})")
    doc = _read_json(path, "scene dataset config")
    ds_dir = os.path.dirname(path)
    stages = doc.get("stages", {})
    if not isinstance(stages, dict):
        raise ValueError(
            f"scene dataset config {path}: 'stages' must be an object, got {_fmt(stages)}")
    defaults = None
    if "default_attributes" in stages:
        cell = stages["default_attributes"]
        if not isinstance(cell, dict):
            raise ValueError(f"scene dataset config {path}: 'stages.default_attributes' must be an "
                             f"object, got {_fmt(cell)}")
        defaults = _frame_attrs(cell, f"{path} (stages.default_attributes)")
        _frame_from(defaults, f"{path} (stages.default_attributes)")  # validate now
    handles: set[str] = set()
    paths = stages.get("paths", {})
    if not isinstance(paths, dict):
        raise ValueError(f"scene dataset config {path}: 'stages.paths' must be an object mapping "
                         f"extensions to lists of paths, got {_fmt(paths)}")
    for ext, entries in paths.items():
        if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
            raise ValueError(f"scene dataset config {path}: 'stages.paths[{ext!r}]' must be a list "
                             f"of path strings, got {_fmt(entries)}")
        is_config = ".json" in ext
        suffix = STAGE_CONFIG_EXT if is_config else ext
        for entry in entries:
            for hit in sorted(glob.glob(os.path.join(ds_dir, entry))):
                if os.path.isdir(hit):
                    files = [os.path.join(hit, f) for f in sorted(os.listdir(hit))
                             if f.endswith(suffix)]
                else:
                    files = [_with_ext(hit, suffix)]
                for f in files:
                    if not os.path.isfile(f):
                        continue
                    if not is_config:
                        sibling = _with_ext(f, STAGE_CONFIG_EXT)
                        f = sibling if os.path.isfile(sibling) else f
                    handles.add(f)
    return _Dataset(path=path, defaults=defaults, handles=sorted(handles))


def _from_stage_config(config: str, defaults: dict[str, tuple[Any, str]] | None) -> ResolvedScene:
    doc = _read_json(config, "stage config")
    attrs = dict(defaults or {})
    attrs.update(_frame_attrs(doc, config))
    frame = _frame_from(attrs, f"stage config {config}")
    render = doc.get("render_asset") or doc.get("collision_asset")
    if not isinstance(render, str) or not render:
        raise ValueError(f"stage config {config}: 'render_asset' must name the scene's mesh file, "
                         f"got {_fmt(doc.get('render_asset'))}")
    asset = os.path.join(os.path.dirname(config), render)
    if not os.path.isfile(asset):
        raise ValueError(f"stage config {config}: render_asset {render!r} not found (looked for "
                         f"{asset})")
    return ResolvedScene(asset=asset, frame=frame, config=config)


def _from_asset(asset: str, dataset: _Dataset | None) -> ResolvedScene:
    if dataset is None or dataset.defaults is None:
        return ResolvedScene(asset=asset, frame=name_based_frame(asset))
    frame = _frame_from(dataset.defaults, f"{asset}: no stage config, stages.default_attributes "
                                          f"of {dataset.path}")
    return ResolvedScene(asset=asset, frame=frame)


def resolve_scene(scene: str | os.PathLike, scene_dataset: str | os.PathLike | None = None
                  ) -> ResolvedScene:
    """The mesh file and frame habitat-sim v0.2.2 would use for ``scene`` (module docstring rules).

    Args:
        scene: the scene path (habitat's ``habitat.simulator.scene``): a mesh file, or a
            ``*.stage_config.json``, or with a dataset any substring of a stage it registers.
        scene_dataset: a ``*.scene_dataset_config.json`` (habitat's
            ``habitat.simulator.scene_dataset``); None, "" or "default" for none.

    Raises:
        FileNotFoundError: neither the scene nor a stage config for it exists, or the dataset
            config does not exist.
        ValueError: a malformed config (bad json, wrong types, a bad up / front / units, a
            render asset that does not exist), naming the file and the value.
    """
    name = os.fspath(scene)
    dataset = None
    if scene_dataset is not None and os.fspath(scene_dataset) not in ("", "default"):
        dataset = _load_dataset(os.fspath(scene_dataset))
    defaults = dataset.defaults if dataset is not None else None

    if dataset is not None and name:
        key = name.lower()
        matches = [h for h in dataset.handles if key in h.lower()]
        if matches:
            handle = matches[0]
            if handle.endswith(STAGE_CONFIG_EXT):
                return _from_stage_config(handle, defaults)
            return _from_asset(handle, dataset)

    config = name if name.endswith(STAGE_CONFIG_EXT) else _with_ext(name, STAGE_CONFIG_EXT)
    if os.path.isfile(config):
        return _from_stage_config(config, defaults)
    if config == name or not Path(name).is_file():
        raise FileNotFoundError(f"scene file not found: {name}")
    return _from_asset(name, dataset)

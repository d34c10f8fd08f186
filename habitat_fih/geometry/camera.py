"""Camera conventions, intrinsics, poses and (back-)projection for habitat's pinhole sensors.

Conventions (used by every function in ``habitat_fih.geometry``)
-----------------------------------------------------------------
* World frame: habitat's, Y up (gravity along -Y).
* Habitat camera frame: +X right, +Y up, the camera looks down **-Z**.
* Depth maps hold PLANAR depth in metres: the distance along the viewing axis, i.e. ``-z`` of
  the surface point in the camera frame (habitat-sim's depth sensor); ``0`` means invalid /
  no hit.  Depth is never the Euclidean ray length.
* A pose is a 4x4 **camera-to-world** matrix ``[R | t; 0 0 0 1]`` in the habitat camera
  convention: ``X_world = R @ X_cam + t``; ``t`` is the camera centre in world coordinates.
  The pose of a sensor is ``agent_state ∘ sensor_offset`` (:func:`pose_from_agent_state`).
* Intrinsics from a horizontal field of view ``hfov`` (degrees) and a resolution ``(H, W)``:
  ``fx = fy = (W / 2) / tan(hfov / 2)``, ``cx = W / 2``, ``cy = H / 2`` (square pixels, so the
  vertical fov follows from the aspect ratio).
* Pixel coordinates ``(u, v)`` are continuous with the image's top-left corner at ``(0, 0)``;
  pixel ``(i, j)`` (row ``i``, column ``j``) covers ``[j, j+1) x [i, i+1)`` and its centre is
  ``u = j + 0.5``, ``v = i + 0.5``.  The row index grows downward, i.e. along camera **-Y**:
  ``u = cx + fx * x / d``, ``v = cy - fy * y / d`` with ``d = -z``.
* OpenCV / VGGT camera frame: x right, y down, z forward, so ``X_cv = diag(1, -1, -1) X_hab``.
  The pixel intrinsics matrix ``K`` is the same in both conventions.  VGGT's extrinsics are
  camera-from-world ``[3, 4]`` matrices whose world is the first frame's OpenCV camera frame
  (:func:`habitat_pose_to_opencv_extrinsic` with ``reference_pose`` = that frame's pose).

Quaternions follow numpy-quaternion / habitat-sim: ``np.quaternion(w, x, y, z)``; episode files
store rotations as ``[x, y, z, w]`` (:func:`quat_from_coeffs`).  Habitat's ``turn_left`` rotates
by ``+angle`` about world +Y.  A sensor's ``orientation`` is an Euler triple (radians) applied
as rotations about X, then Y, then Z in the agent frame: ``R = Rz @ Ry @ Rx`` (habitat-sim
``Sensor::setTransformationFromSpec`` on a translation-rotation-scaling scene node), and the
sensor ``position`` is not rotated by the sensor's own orientation.

Everything is vectorised over leading batch dimensions and computed in float64.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import numpy as np
import quaternion  # noqa: F401  (registers the np.quaternion dtype)

__all__ = [
    "HABITAT_TO_OPENCV",
    "MIN_DEPTH",
    "backproject_depth",
    "camera_rays",
    "camera_to_world",
    "crop_intrinsics",
    "depth_to_world_points",
    "euler_to_rotation_matrix",
    "habitat_pose_to_opencv_extrinsic",
    "intrinsics_from_hfov",
    "invert_pose",
    "opencv_extrinsic_to_habitat_pose",
    "pixel_centers",
    "pose_from_agent_state",
    "project_points",
    "quat_from_angle_axis",
    "quat_from_coeffs",
    "quat_to_coeffs",
    "quat_to_rotation_matrix",
    "rotation_matrix_to_quat",
    "transform_points",
    "validate_hfov",
    "world_to_camera",
]

#: Smallest planar depth counted as "in front of" a camera (metres).
MIN_DEPTH = 1e-6

#: Change of basis from the habitat camera frame (x right, y up, -z forward) to the OpenCV
#: camera frame (x right, y down, z forward); it is its own inverse.
HABITAT_TO_OPENCV = np.diag([1.0, -1.0, -1.0])
HABITAT_TO_OPENCV.setflags(write=False)


# --------------------------------------------------------------------------- intrinsics
def validate_hfov(hfov: float, name: str = "hfov") -> float:
    """Return ``hfov`` as a float, or raise ValueError unless it is finite and in (0, 180)."""
    value = float(hfov)
    if not (math.isfinite(value) and 0.0 < value < 180.0):
        raise ValueError(f"{name} must be in (0, 180) degrees, got {hfov!r}")
    return value


def _validate_size(height: int, width: int) -> tuple[int, int]:
    if int(height) != height or int(width) != width or height < 1 or width < 1:
        raise ValueError(f"image size must be positive integers (H, W), got ({height}, {width})")
    return int(height), int(width)


def intrinsics_from_hfov(hfov: float, width: int, height: int) -> np.ndarray:
    """Pinhole intrinsics ``K`` [3, 3] (float64) for a horizontal fov in degrees.

    ``fx = fy = (W / 2) / tan(hfov / 2)``, ``cx = W / 2``, ``cy = H / 2``.  Valid for both the
    habitat and the OpenCV camera frame (see the module docstring).
    """
    hfov = validate_hfov(hfov)
    height, width = _validate_size(height, width)
    f = (width / 2.0) / math.tan(math.radians(hfov) / 2.0)
    return np.array([[f, 0.0, width / 2.0], [0.0, f, height / 2.0], [0.0, 0.0, 1.0]])


def resize_intrinsics(
    K: np.ndarray, src_size: tuple[int, int], dst_size: tuple[int, int]
) -> np.ndarray:
    """Intrinsics of an image resized from ``src_size`` (H, W) to ``dst_size`` (h, w).

    Exact for a resize that maps the image rectangle ``[0, W] x [0, H]`` onto ``[0, w] x
    [0, h]`` (pixel-centre convention at +0.5, e.g. ``cv2.resize`` / ``align_corners=False``):
    row 0 of K scales by ``w / W`` and row 1 by ``h / H``.  K: [..., 3, 3].
    """
    K = np.asarray(K, dtype=np.float64)
    if K.shape[-2:] != (3, 3):
        raise ValueError(f"K must have shape [..., 3, 3], got {K.shape}")
    sh, sw = _validate_size(*src_size)
    dh, dw = _validate_size(*dst_size)
    out = K.copy()
    out[..., 0, :] *= dw / sw
    out[..., 1, :] *= dh / sh
    out[..., 2, :] = K[..., 2, :]
    return out


def crop_intrinsics(K: np.ndarray, top: float, left: float) -> np.ndarray:
    """Intrinsics after cropping ``top`` rows and ``left`` columns off the image (K: [..., 3, 3])."""
    K = np.asarray(K, dtype=np.float64)
    if K.shape[-2:] != (3, 3):
        raise ValueError(f"K must have shape [..., 3, 3], got {K.shape}")
    out = K.copy()
    out[..., 0, 2] -= left
    out[..., 1, 2] -= top
    return out


def pixel_centers(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates ``(u [H, W], v [H, W])``: ``u = j + 0.5``, ``v = i + 0.5``."""
    height, width = _validate_size(height, width)
    v, u = np.meshgrid(
        np.arange(height, dtype=np.float64) + 0.5,
        np.arange(width, dtype=np.float64) + 0.5,
        indexing="ij",
    )
    return u, v


@functools.lru_cache(maxsize=32)
def _camera_rays_cached(hfov: float, height: int, width: int) -> np.ndarray:
    K = intrinsics_from_hfov(hfov, width, height)
    u, v = pixel_centers(height, width)
    rays = np.empty((height, width, 3))
    rays[..., 0] = (u - K[0, 2]) / K[0, 0]
    rays[..., 1] = -(v - K[1, 2]) / K[1, 1]
    rays[..., 2] = -1.0
    rays.setflags(write=False)
    return rays


def camera_rays(hfov: float, height: int, width: int) -> np.ndarray:
    """Per-pixel rays [H, W, 3] in the habitat camera frame, scaled to planar depth 1 (z = -1).

    A surface point at pixel (i, j) with planar depth ``d`` is ``d * rays[i, j]``.  The array is
    cached and read-only.
    """
    hfov = validate_hfov(hfov)
    height, width = _validate_size(height, width)
    return _camera_rays_cached(hfov, height, width)


# --------------------------------------------------------------------------- points
def backproject_depth(depth: np.ndarray, hfov: float) -> np.ndarray:
    """Planar depth [..., H, W] (metres) -> camera-frame points [..., H, W, 3] (habitat frame).

    Invalid pixels (depth 0) map to the camera centre (0, 0, 0); mask them with ``depth > 0``.
    """
    depth = np.asarray(depth, dtype=np.float64)
    if depth.ndim < 2:
        raise ValueError(f"depth must have shape [..., H, W], got {depth.shape}")
    rays = camera_rays(hfov, depth.shape[-2], depth.shape[-1])
    return depth[..., None] * rays


def transform_points(transform: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply rigid 4x4 transforms [..., 4, 4] to points [..., P, 3] -> [..., P, 3] (broadcast)."""
    transform = np.asarray(transform, dtype=np.float64)
    points = np.asarray(points, dtype=np.float64)
    if transform.shape[-2:] != (4, 4):
        raise ValueError(f"transform must have shape [..., 4, 4], got {transform.shape}")
    if points.shape[-1] != 3:
        raise ValueError(f"points must have shape [..., 3], got {points.shape}")
    rot = transform[..., :3, :3]
    trans = transform[..., None, :3, 3]
    return np.matmul(points, np.swapaxes(rot, -1, -2)) + trans


def invert_pose(pose: np.ndarray) -> np.ndarray:
    """Inverse of rigid transforms [..., 4, 4]: ``[R^T | -R^T t]`` (exact for rigid poses)."""
    pose = np.asarray(pose, dtype=np.float64)
    if pose.shape[-2:] != (4, 4):
        raise ValueError(f"pose must have shape [..., 4, 4], got {pose.shape}")
    rot_t = np.swapaxes(pose[..., :3, :3], -1, -2)
    out = np.zeros_like(pose)
    out[..., :3, :3] = rot_t
    out[..., :3, 3] = -np.einsum("...ij,...j->...i", rot_t, pose[..., :3, 3])
    out[..., 3, 3] = 1.0
    return out


def camera_to_world(points_cam: np.ndarray, pose: np.ndarray) -> np.ndarray:
    """Camera-frame points [..., P, 3] -> world points with camera-to-world ``pose`` [..., 4, 4]."""
    return transform_points(pose, points_cam)


def world_to_camera(points_world: np.ndarray, pose: np.ndarray) -> np.ndarray:
    """World points [..., P, 3] -> habitat camera frame of camera-to-world ``pose`` [..., 4, 4]."""
    return transform_points(invert_pose(pose), points_world)


def depth_to_world_points(depth: np.ndarray, pose: np.ndarray, hfov: float) -> np.ndarray:
    """Planar depth [..., H, W] + camera-to-world pose [..., 4, 4] -> world points [..., H, W, 3]."""
    depth = np.asarray(depth, dtype=np.float64)
    pts = backproject_depth(depth, hfov)
    shape = pts.shape
    flat = pts.reshape(*shape[:-3], shape[-3] * shape[-2], 3)  # [..., H*W, 3]
    return transform_points(pose, flat).reshape(shape)


def project_points(
    points_cam: np.ndarray, K: np.ndarray, *, min_depth: float = 1e-6
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Project habitat camera-frame points [..., 3] with intrinsics K [3, 3].

    Returns ``(uv [..., 2], depth [...], in_front [...])``: continuous pixel coordinates
    ``u = cx + fx x / d``, ``v = cy - fy y / d``, the planar depth ``d = -z`` and
    ``in_front = d > min_depth``.  ``uv`` is NaN where the point is not in front.  Whether the
    pixel lies inside a ``H x W`` image is ``0 <= u < W and 0 <= v < H``.
    """
    points_cam = np.asarray(points_cam, dtype=np.float64)
    K = np.asarray(K, dtype=np.float64)
    if points_cam.shape[-1] != 3:
        raise ValueError(f"points_cam must have shape [..., 3], got {points_cam.shape}")
    if K.shape != (3, 3):
        raise ValueError(f"K must have shape [3, 3], got {K.shape}")
    depth = -points_cam[..., 2]
    in_front = depth > min_depth
    safe = np.where(in_front, depth, 1.0)
    uv = np.empty(points_cam.shape[:-1] + (2,))
    uv[..., 0] = K[0, 2] + K[0, 0] * points_cam[..., 0] / safe
    uv[..., 1] = K[1, 2] - K[1, 1] * points_cam[..., 1] / safe
    uv[~in_front] = np.nan
    return uv, depth, in_front


# --------------------------------------------------------------------------- rotations
def quat_from_angle_axis(angle: float, axis: Sequence[float]) -> np.quaternion:
    """Unit quaternion rotating by ``angle`` radians about ``axis`` (right-hand rule)."""
    axis = np.asarray(axis, dtype=np.float64)
    norm = float(np.linalg.norm(axis))
    if axis.shape != (3,) or not norm > 0.0:
        raise ValueError(f"axis must be a non-zero 3-vector, got {axis!r}")
    axis = axis / norm
    s = math.sin(angle / 2.0)
    return np.quaternion(math.cos(angle / 2.0), *(s * axis))


def quat_from_coeffs(coeffs: Sequence[float]) -> np.quaternion:
    """Quaternion from habitat's stored coefficient order ``[x, y, z, w]`` (episode files)."""
    c = np.asarray(coeffs, dtype=np.float64)
    if c.shape != (4,):
        raise ValueError(f"coeffs must be [x, y, z, w], got shape {c.shape}")
    return np.quaternion(c[3], c[0], c[1], c[2])


def quat_to_coeffs(q: np.quaternion) -> np.ndarray:
    """Habitat's coefficient order ``[x, y, z, w]`` of a quaternion."""
    return np.array([q.x, q.y, q.z, q.w])


def _quat_wxyz(q: np.quaternion | Sequence[float] | np.ndarray) -> np.ndarray:
    if isinstance(q, np.quaternion):
        arr = np.array([q.w, q.x, q.y, q.z])
    else:
        arr = np.asarray(q)
        if arr.dtype == np.quaternion:
            arr = quaternion.as_float_array(arr)
        arr = arr.astype(np.float64)
    if arr.shape[-1] != 4:
        raise ValueError(
            f"quaternion must be np.quaternion or [..., 4] (w, x, y, z), got {arr.shape}"
        )
    norm = np.linalg.norm(arr, axis=-1, keepdims=True)
    if not np.all(np.isfinite(norm)) or np.any(norm < 1e-12):
        raise ValueError(f"quaternion must be finite and non-zero, got {arr!r}")
    return arr / norm


def quat_to_rotation_matrix(q: np.quaternion | Sequence[float] | np.ndarray) -> np.ndarray:
    """Rotation matrix [..., 3, 3] of a quaternion (``np.quaternion`` or [..., 4] ``w, x, y, z``).

    The quaternion is normalised first.
    """
    w, x, y, z = np.moveaxis(_quat_wxyz(q), -1, 0)
    out = np.empty(w.shape + (3, 3))
    out[..., 0, 0] = 1 - 2 * (y * y + z * z)
    out[..., 0, 1] = 2 * (x * y - z * w)
    out[..., 0, 2] = 2 * (x * z + y * w)
    out[..., 1, 0] = 2 * (x * y + z * w)
    out[..., 1, 1] = 1 - 2 * (x * x + z * z)
    out[..., 1, 2] = 2 * (y * z - x * w)
    out[..., 2, 0] = 2 * (x * z - y * w)
    out[..., 2, 1] = 2 * (y * z + x * w)
    out[..., 2, 2] = 1 - 2 * (x * x + y * y)
    return out


def rotation_matrix_to_quat(R: np.ndarray) -> np.quaternion:
    """Unit quaternion (w >= 0) of a 3x3 rotation matrix."""
    R = np.asarray(R, dtype=np.float64)
    if R.shape != (3, 3):
        raise ValueError(f"R must have shape [3, 3], got {R.shape}")
    q = quaternion.from_rotation_matrix(R)
    return -q if q.w < 0 else q


def euler_to_rotation_matrix(orientation: Sequence[float]) -> np.ndarray:
    """Habitat sensor orientation (Euler radians [rx, ry, rz]) -> ``Rz @ Ry @ Rx`` [3, 3]."""
    o = np.asarray(orientation, dtype=np.float64)
    if o.shape != (3,) or not np.all(np.isfinite(o)):
        raise ValueError(f"sensor orientation must be 3 finite Euler angles (radians), got {o!r}")
    cx, cy, cz = np.cos(o)
    sx, sy, sz = np.sin(o)
    rx = np.array([[1.0, 0.0, 0.0], [0.0, cx, -sx], [0.0, sx, cx]])
    ry = np.array([[cy, 0.0, sy], [0.0, 1.0, 0.0], [-sy, 0.0, cy]])
    rz = np.array([[cz, -sz, 0.0], [sz, cz, 0.0], [0.0, 0.0, 1.0]])
    return rz @ ry @ rx


# --------------------------------------------------------------------------- poses
def pose_from_agent_state(
    position: Sequence[float] | np.ndarray,
    rotation: np.quaternion | Sequence[float] | np.ndarray,
    sensor_position: Sequence[float] | np.ndarray = (0.0, 0.0, 0.0),
    sensor_orientation: Sequence[float] | np.ndarray = (0.0, 0.0, 0.0),
) -> np.ndarray:
    """Camera-to-world pose [4, 4] of a sensor mounted on an agent.

    ``pose = T(position) R(rotation) @ T(sensor_position) R_euler(sensor_orientation)``.

    Args:
        position: agent position [3] in world coordinates (habitat ``AgentState.position``).
        rotation: agent rotation, ``np.quaternion(w, x, y, z)`` (or an array [4] in w, x, y, z
            order; use :func:`quat_from_coeffs` for habitat's stored ``[x, y, z, w]``).
        sensor_position: sensor offset [3] in the agent frame (e.g. ``[0, 1.25, 0]``).
        sensor_orientation: sensor Euler angles [3] in radians (habitat's sensor
            ``orientation``; ``R = Rz @ Ry @ Rx``).
    """
    p = np.asarray(position, dtype=np.float64)
    sp = np.asarray(sensor_position, dtype=np.float64)
    if p.shape != (3,) or not np.all(np.isfinite(p)):
        raise ValueError(f"position must be a finite 3-vector, got {p!r}")
    if sp.shape != (3,) or not np.all(np.isfinite(sp)):
        raise ValueError(f"sensor_position must be a finite 3-vector, got {sp!r}")
    r_agent = quat_to_rotation_matrix(rotation)
    if r_agent.shape != (3, 3):
        raise ValueError(f"rotation must be a single quaternion, got shape {r_agent.shape[:-2]}")
    r_sensor = euler_to_rotation_matrix(sensor_orientation)
    pose = np.eye(4)
    pose[:3, :3] = r_agent @ r_sensor
    pose[:3, 3] = p + r_agent @ sp
    return pose


def habitat_pose_to_opencv_extrinsic(
    pose: np.ndarray, reference_pose: np.ndarray | None = None
) -> np.ndarray:
    """Habitat camera-to-world pose(s) [..., 4, 4] -> OpenCV camera-from-world [..., 3, 4].

    The OpenCV camera frame is x right, y down, z forward (VGGT's convention).  With
    ``reference_pose`` [4, 4] (e.g. the episode's first frame) the world of the extrinsics is that
    camera's OpenCV frame, so the reference itself gets ``[I | 0]``; without it the world is
    habitat's world frame unchanged (Y up).  With ``C = diag(1, -1, -1, 1)``:
    ``E = C @ inv(pose) @ reference_pose @ C`` (top three rows).
    """
    pose = np.asarray(pose, dtype=np.float64)
    if pose.shape[-2:] != (4, 4):
        raise ValueError(f"pose must have shape [..., 4, 4], got {pose.shape}")
    flip = np.diag([1.0, -1.0, -1.0, 1.0])
    cam_from_world = flip @ invert_pose(pose)  # OpenCV camera from habitat world
    if reference_pose is not None:
        reference_pose = np.asarray(reference_pose, dtype=np.float64)
        if reference_pose.shape != (4, 4):
            raise ValueError(f"reference_pose must have shape [4, 4], got {reference_pose.shape}")
        cam_from_world = cam_from_world @ (reference_pose @ flip)
    return cam_from_world[..., :3, :]


def opencv_extrinsic_to_habitat_pose(
    extrinsic: np.ndarray, reference_pose: np.ndarray | None = None
) -> np.ndarray:
    """Inverse of :func:`habitat_pose_to_opencv_extrinsic`: [..., 3, 4] -> habitat poses [..., 4, 4].

    E.g. VGGT's predicted extrinsics (first frame = world) with ``reference_pose`` = the first
    frame's habitat pose give habitat camera-to-world poses (up to VGGT's scale).
    """
    extrinsic = np.asarray(extrinsic, dtype=np.float64)
    if extrinsic.shape[-2:] != (3, 4):
        raise ValueError(f"extrinsic must have shape [..., 3, 4], got {extrinsic.shape}")
    flip = np.diag([1.0, -1.0, -1.0, 1.0])
    full = np.zeros(extrinsic.shape[:-2] + (4, 4))
    full[..., :3, :] = extrinsic
    full[..., 3, 3] = 1.0
    pose = invert_pose(full) @ flip  # habitat camera -> (reference OpenCV or habitat) world
    if reference_pose is not None:
        reference_pose = np.asarray(reference_pose, dtype=np.float64)
        if reference_pose.shape != (4, 4):
            raise ValueError(f"reference_pose must have shape [4, 4], got {reference_pose.shape}")
        pose = (reference_pose @ flip) @ pose
    return pose

"""The DeepRacer car as the rest of the project sees it: a CarSpec read from the URDF.

`urdf/deepracer.urdf` is the single source of truth for the car's dimensions, steering
limit, mass and camera; this module reads it (numpy and `xml.etree` only, no ROS) so the
simulator, the renderer and the ROS nodes all use the same figures. Frames follow
REP 103: `base_link` is on the ground below the centre of the rear axle, x forward,
y left, z up.
"""

from __future__ import annotations

import math
import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .resources import share_path

PACKAGE = "deepracer_rl"
URDF_NAME = "deepracer.urdf"

# Names in the URDF that the project relies on (frames of the topic contract, joints of
# the Gazebo plugins); renaming one in the URDF is a CarModelError, not a silent change.
ODOM_FRAME = "odom"  # REP 105 frame the car's odometry is given in: for the simulators, the track frame
BASE_LINK = "base_link"
CHASSIS_LINK = "chassis"
CAMERA_LINK = "camera_link"
CAMERA_OPTICAL_LINK = "camera_optical_link"
STEERING_JOINTS = ("left_steering_hinge_joint", "right_steering_hinge_joint")
FRONT_WHEEL_JOINTS = ("left_front_wheel_joint", "right_front_wheel_joint")
REAR_WHEEL_JOINTS = ("left_rear_wheel_joint", "right_rear_wheel_joint")

# Geometric consistency tolerances (metres / radians).
_POSITION_TOL = 1e-3  # base_link on the ground below the rear axle centre
_ANGLE_TOL = 1e-4  # camera roll/yaw, optical frame orientation


class CarModelError(ValueError):
    """The car URDF is missing or malformed; the message names the file and the element."""


@dataclass(frozen=True)
class CameraSpec:
    """The DeepRacer front camera: pose in base_link and pinhole parameters."""

    x: float  # optical centre, metres ahead of base_link origin (rear axle)
    y: float  # metres left of base_link origin
    z: float  # metres above the ground
    pitch: float  # radians, positive = looking down
    hfov: float  # horizontal field of view, radians
    width: int  # pixels
    height: int  # pixels
    rate_hz: float  # frames per second
    near: float  # clip planes, metres
    far: float

    def intrinsics(self, width: int | None = None, height: int | None = None) -> tuple[float, float, float, float]:
        """fx, fy, cx, cy of the pinhole camera at the given image size (square pixels, fy = fx).

        The horizontal FOV is kept at any size; the principal point is the image centre
        (width / 2, height / 2, as Gazebo's camera_info). Giving only one of width and
        height keeps the sensor's aspect ratio.
        """
        if width is None and height is None:
            width, height = self.width, self.height
        elif height is None:
            height = round(width * self.height / self.width)
        elif width is None:
            width = round(height * self.width / self.height)
        if width <= 0 or height <= 0:
            raise ValueError(f"image size must be positive, got {width}x{height}")
        fx = (width / 2.0) / math.tan(self.hfov / 2.0)
        return fx, fx, width / 2.0, height / 2.0


@dataclass(frozen=True)
class CarSpec:
    """Dimensions, limits and camera of the car, all read from the URDF."""

    wheelbase: float  # m, rear axle to front axle
    front_track: float  # m, between front wheel centres
    rear_track: float
    wheel_radius: float
    mass: float  # kg, sum of all link masses
    max_steer: float  # rad, from the steering hinge joint limit
    length: float  # chassis bounding-box length, m
    width: float  # overall width (chassis and wheels), m
    camera: CameraSpec
    source: str  # path of the URDF it was read from

    @property
    def control_hz(self) -> float:
        """Control steps per second of sim time: one per camera frame (the URDF camera's update rate)."""
        return float(self.camera.rate_hz)

    def wheel_contact_points(self) -> np.ndarray:
        """(4, 2) x,y of the tyre contact points in base_link: front-left, front-right, rear-left, rear-right."""
        front, rear = self.front_track / 2.0, self.rear_track / 2.0
        return np.array(
            [
                [self.wheelbase, front],
                [self.wheelbase, -front],
                [0.0, rear],
                [0.0, -rear],
            ]
        )

    @classmethod
    def from_urdf(cls, path: str | os.PathLike | None = None) -> CarSpec:
        """Read the car from a URDF file (default: the package's `urdf/deepracer.urdf`).

        Positions come from composing the joint origins (xyz and rpy) from base_link with
        every movable joint at zero; raises CarModelError on anything missing or invalid.
        """
        path = Path(default_urdf_path() if path is None else path)
        return UrdfReader(path).car_spec()


def default_urdf_path() -> Path:
    """The car URDF: the checkout's `urdf/` when run from source, else the installed share dir."""
    return share_path("urdf", URDF_NAME)


# ---- geometry helpers ----------------------------------------------------------------------


def _rpy_matrix(roll: float, pitch: float, yaw: float) -> np.ndarray:
    """URDF rpy (fixed axes X, then Y, then Z) as a rotation matrix: Rz(yaw) Ry(pitch) Rx(roll)."""
    cr, sr = math.cos(roll), math.sin(roll)
    cp, sp = math.cos(pitch), math.sin(pitch)
    cy, sy = math.cos(yaw), math.sin(yaw)
    return np.array(
        [
            [cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
            [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
            [-sp, cp * sr, cp * cr],
        ]
    )


def _transform(xyz: np.ndarray, rpy: np.ndarray) -> np.ndarray:
    t = np.eye(4)
    t[:3, :3] = _rpy_matrix(*rpy)
    t[:3, 3] = xyz
    return t


# ---- the reader ----------------------------------------------------------------------------


class UrdfReader:
    """Reads one URDF file: its links, its joints and the link poses composed from base_link.

    From them it derives the car's figures (wheels, steering limit, mass, camera, chassis
    extent) that `car_spec()` gathers into a CarSpec; gazebo_tags uses `joint_links` and
    `link_pose` too. Errors are CarModelError whose message starts with the file path.
    """

    def __init__(self, path: Path):
        self.path = path
        try:
            root = ET.parse(path).getroot()
        except ET.ParseError as exc:
            raise self.error(f"not well-formed XML ({exc})") from exc
        except OSError as exc:
            raise self.error(f"cannot read the URDF ({exc.strerror or exc})") from exc
        if root.tag != "robot":
            raise self.error(f"root element is <{root.tag}>, expected <robot>")
        self.root = root
        self.links: dict[str, ET.Element] = {}
        self.joints: dict[str, ET.Element] = {}
        for kind, table in (("link", self.links), ("joint", self.joints)):
            for elem in root.findall(kind):
                name = elem.get("name")
                if not name:
                    raise self.error(f"a <{kind}> has no 'name' attribute")
                if name in table:
                    raise self.error(f"<{kind} name='{name}'> is defined twice")
                table[name] = elem
        # child link -> joint, checked so that every link has at most one parent
        self.parent_joint: dict[str, ET.Element] = {}
        for name, joint in self.joints.items():
            _, child = self.joint_links(name)
            if child in self.parent_joint:
                raise self.error(f"<link name='{child}'> is the child of two joints")
            self.parent_joint[child] = joint
        self.require_link(BASE_LINK)
        if BASE_LINK in self.parent_joint:
            raise self.error(f"<link name='{BASE_LINK}'> must be the root, but it is a joint child")

    # -- errors and lookups --
    def error(self, message: str) -> CarModelError:
        return CarModelError(f"{self.path}: {message}")

    def require_link(self, name: str) -> ET.Element:
        if name not in self.links:
            raise self.error(f"<link name='{name}'> not found")
        return self.links[name]

    def require_joint(self, name: str, types: tuple[str, ...]) -> ET.Element:
        if name not in self.joints:
            raise self.error(f"<joint name='{name}'> not found")
        joint = self.joints[name]
        if joint.get("type") not in types:
            raise self.error(f"<joint name='{name}'> has type '{joint.get('type')}', expected {' or '.join(types)}")
        return joint

    def joint_links(self, name: str) -> tuple[str, str]:
        joint = self.joints[name]
        ends = []
        for tag in ("parent", "child"):
            elem = joint.find(tag)
            if elem is None or not elem.get("link"):
                raise self.error(f"<joint name='{name}'> has no <{tag} link=...>")
            if elem.get("link") not in self.links:
                raise self.error(f"<joint name='{name}'>: <{tag}> <link name='{elem.get('link')}'> not found")
            ends.append(elem.get("link"))
        return ends[0], ends[1]

    # -- numbers --
    def numbers(self, text: str, n: int, where: str) -> np.ndarray:
        """Exactly n finite numbers from a space-separated string; `where` names its source."""
        try:
            values = np.array([float(v) for v in text.split()], dtype=float)
        except ValueError:
            raise self.error(f"{where} is not numeric") from None
        if values.shape != (n,) or not np.all(np.isfinite(values)):
            raise self.error(f"{where} must be {n} finite number(s)")
        return values

    def floats(self, elem: ET.Element, attr: str, n: int, where: str, default: str | None = None) -> np.ndarray:
        text = elem.get(attr, default)
        if text is None:
            raise self.error(f"{where}: missing attribute '{attr}'")
        return self.numbers(text, n, f"{where}: attribute {attr}='{text}'")

    def attr_float(self, elem: ET.Element, attr: str, where: str) -> float:
        return float(self.floats(elem, attr, 1, where)[0])

    def text_float(self, parent: ET.Element, tag: str, where: str) -> float:
        elem = parent.find(tag)
        if elem is None or elem.text is None or not elem.text.strip():
            raise self.error(f"{where}: missing <{tag}>")
        try:
            value = float(elem.text)
        except ValueError:
            raise self.error(f"{where}: <{tag}>{elem.text.strip()}</{tag}> is not numeric") from None
        if not math.isfinite(value):
            raise self.error(f"{where}: <{tag}> must be finite")
        return value

    def text_int(self, parent: ET.Element, tag: str, where: str) -> int:
        value = self.text_float(parent, tag, where)
        if value != int(value) or value <= 0:
            raise self.error(f"{where}: <{tag}> must be a positive integer")
        return int(value)

    def origin(self, elem: ET.Element, where: str) -> np.ndarray:
        """4x4 transform of an element's optional <origin xyz rpy> (identity when absent)."""
        origin = elem.find("origin")
        if origin is None:
            return np.eye(4)
        where = f"{where} <origin>"
        xyz = self.floats(origin, "xyz", 3, where, default="0 0 0")
        rpy = self.floats(origin, "rpy", 3, where, default="0 0 0")
        return _transform(xyz, rpy)

    # -- kinematics --
    def link_pose(self, link: str) -> np.ndarray:
        """4x4 pose of a link in base_link, every movable joint at zero."""
        self.require_link(link)
        pose = np.eye(4)
        seen = set()
        current = link
        while current != BASE_LINK:
            if current in seen:
                raise self.error(f"<link name='{link}'>: the joint chain loops at '{current}'")
            seen.add(current)
            joint = self.parent_joint.get(current)
            if joint is None:
                raise self.error(f"<link name='{link}'> is not connected to '{BASE_LINK}' (stops at '{current}')")
            pose = self.origin(joint, f"<joint name='{joint.get('name')}'>") @ pose
            current = joint.find("parent").get("link")
        return pose

    def collision_geometry(self, link: str, shape: str) -> tuple[np.ndarray, ET.Element]:
        """(pose in base_link, <shape> element) of a link's collision primitive."""
        elem = self.require_link(link)
        where = f"<link name='{link}'>"
        for collision in elem.findall("collision"):
            geometry = collision.find(f"geometry/{shape}")
            if geometry is not None:
                return self.link_pose(link) @ self.origin(collision, f"{where} <collision>"), geometry
        raise self.error(f"{where}: missing <collision><geometry><{shape}>")

    # -- the parts --
    def wheels(self) -> tuple[np.ndarray, np.ndarray, float]:
        """Centres (4, 3) FL, FR, RL, RR in base_link, y extents (4, 2) and the wheel radius."""
        for name in REAR_WHEEL_JOINTS + FRONT_WHEEL_JOINTS:
            self.require_joint(name, ("continuous", "revolute"))
        for hinge, wheel in zip(STEERING_JOINTS, FRONT_WHEEL_JOINTS):
            self.require_joint(hinge, ("revolute",))
            hinge_child = self.joint_links(hinge)[1]
            if self.joint_links(wheel)[0] != hinge_child:
                raise self.error(f"<joint name='{wheel}'> must have the steering hinge link '{hinge_child}' as parent")
        centres, extents, radii = [], [], []
        for name in FRONT_WHEEL_JOINTS + REAR_WHEEL_JOINTS:
            link = self.joint_links(name)[1]
            where = f"<link name='{link}'> <cylinder>"
            pose, cylinder = self.collision_geometry(link, "cylinder")
            radius = self.attr_float(cylinder, "radius", where)
            length = self.attr_float(cylinder, "length", where)
            if radius <= 0 or length <= 0:
                raise self.error(f"{where}: radius and length must be positive")
            axis = pose[:3, 2]  # URDF cylinders lie along their local z
            half_y = 0.5 * length * abs(axis[1]) + radius * math.sqrt(max(0.0, 1.0 - axis[1] ** 2))
            centres.append(self.link_pose(link)[:3, 3])
            extents.append((pose[1, 3] - half_y, pose[1, 3] + half_y))
            radii.append(radius)
        centres_a = np.array(centres)
        if max(radii) - min(radii) > 1e-6:
            raise self.error(f"the four wheel <cylinder> radii differ: {radii}")
        radius = radii[0]
        for name, centre in zip(FRONT_WHEEL_JOINTS + REAR_WHEEL_JOINTS, centres_a):
            if abs(centre[2] - radius) > _POSITION_TOL:
                raise self.error(
                    f"<joint name='{name}'>: wheel centre is {centre[2]:.4f} m above '{BASE_LINK}', "
                    f"expected the wheel radius {radius:.4f} m ('{BASE_LINK}' must be on the ground)"
                )
        for i, name in ((0, FRONT_WHEEL_JOINTS[0]), (2, REAR_WHEEL_JOINTS[0])):
            if not centres_a[i, 1] > 0 > centres_a[i + 1, 1]:
                raise self.error(f"<joint name='{name}'>: left wheel must be at +y and the right wheel at -y")
        rear_centre = centres_a[2:].mean(axis=0)
        if abs(rear_centre[0]) > _POSITION_TOL or abs(rear_centre[1]) > _POSITION_TOL:
            raise self.error(
                f"rear axle centre is at x={rear_centre[0]:.4f}, y={rear_centre[1]:.4f} m in "
                f"'{BASE_LINK}', expected 0, 0 ('{BASE_LINK}' must be below the rear axle centre)"
            )
        return centres_a, np.array(extents), radius

    def max_steer(self) -> float:
        limits = []
        for name in STEERING_JOINTS:
            joint = self.require_joint(name, ("revolute",))
            where = f"<joint name='{name}'>"
            axis = joint.find("axis")
            if axis is None:
                raise self.error(f"{where}: missing <axis> (steering turns about z)")
            xyz = self.floats(axis, "xyz", 3, f"{where} <axis>")
            if not np.allclose(xyz / max(np.linalg.norm(xyz), 1e-12), (0, 0, 1), atol=1e-6):
                raise self.error(f"{where} <axis>: steering hinges must turn about z (0 0 1), got {xyz.tolist()}")
            limit = joint.find("limit")
            if limit is None:
                raise self.error(f"{where}: missing <limit>")
            lower = self.attr_float(limit, "lower", f"{where} <limit>")
            upper = self.attr_float(limit, "upper", f"{where} <limit>")
            if not lower < 0 < upper:
                raise self.error(f"{where} <limit>: need lower < 0 < upper, got {lower}, {upper}")
            limits.append(min(-lower, upper))
        return min(limits)

    def mass(self) -> float:
        total = 0.0
        for name, link in self.links.items():
            inertial = link.find("inertial")
            if inertial is None:
                continue
            where = f"<link name='{name}'> <inertial>"
            mass_elem = inertial.find("mass")
            if mass_elem is None:
                raise self.error(f"{where}: missing <mass>")
            mass = self.attr_float(mass_elem, "value", f"{where} <mass>")
            if mass <= 0:
                raise self.error(f"{where} <mass>: value must be positive, got {mass}")
            inertia = inertial.find("inertia")
            if inertia is None:
                raise self.error(f"{where}: missing <inertia>")
            for attr in ("ixx", "ixy", "ixz", "iyy", "iyz", "izz"):
                self.attr_float(inertia, attr, f"{where} <inertia>")
            total += mass
        if total <= 0:
            raise self.error("no link has an <inertial> with a <mass>")
        return total

    def camera(self) -> CameraSpec:
        sensor = None
        for gazebo in self.root.findall("gazebo"):
            if gazebo.get("reference") == CAMERA_LINK:
                for candidate in gazebo.findall("sensor"):
                    if candidate.get("type") == "camera":
                        sensor = candidate
                        break
        where = f"<gazebo reference='{CAMERA_LINK}'> <sensor type='camera'>"
        if sensor is None:
            raise self.error(f"{where} not found (the camera intrinsics live there)")
        camera = sensor.find("camera")
        if camera is None:
            raise self.error(f"{where}: missing <camera>")
        hfov = self.text_float(camera, "horizontal_fov", f"{where} <camera>")
        width = self.text_int(camera, "image/width", f"{where} <camera>")
        height = self.text_int(camera, "image/height", f"{where} <camera>")
        near = self.text_float(camera, "clip/near", f"{where} <camera>")
        far = self.text_float(camera, "clip/far", f"{where} <camera>")
        rate = self.text_float(sensor, "update_rate", where)
        if not 0 < hfov < math.pi:
            raise self.error(f"{where} <horizontal_fov>: must be in (0, pi), got {hfov}")
        if not 0 < near < far:
            raise self.error(f"{where} <clip>: need 0 < near < far, got {near}, {far}")
        if rate <= 0:
            raise self.error(f"{where} <update_rate>: must be positive, got {rate}")

        pose = self.link_pose(CAMERA_LINK)
        sensor_pose = sensor.find("pose")
        if sensor_pose is not None and (sensor_pose.text or "").strip():
            values = self.numbers(sensor_pose.text, 6, f"{where}: <pose>{sensor_pose.text.strip()}</pose>")
            pose = pose @ _transform(values[:3], values[3:])
        rot = pose[:3, :3]
        pitch = math.asin(max(-1.0, min(1.0, -rot[2, 0])))
        yaw = math.atan2(rot[1, 0], rot[0, 0])
        roll = math.atan2(rot[2, 1], rot[2, 2])
        if abs(yaw) > _ANGLE_TOL or abs(roll) > _ANGLE_TOL:
            raise self.error(
                f"<link name='{CAMERA_LINK}'>: camera must look straight ahead, only pitched "
                f"(roll {roll:.4f}, yaw {yaw:.4f} rad)"
            )
        self.check_optical_frame(pose)
        x, y, z = pose[:3, 3]
        return CameraSpec(
            x=float(x),
            y=float(y),
            z=float(z),
            pitch=pitch,
            hfov=hfov,
            width=width,
            height=height,
            rate_hz=rate,
            near=near,
            far=far,
        )

    def check_optical_frame(self, sensor_pose: np.ndarray) -> None:
        """camera_optical_link must be the sensor frame turned to z forward, x right, y down."""
        optical = self.link_pose(CAMERA_OPTICAL_LINK)
        expected = sensor_pose[:3, :3] @ np.array([[0, 0, 1], [-1, 0, 0], [0, -1, 0]], dtype=float)
        if not np.allclose(optical[:3, 3], sensor_pose[:3, 3], atol=1e-6) or not np.allclose(
            optical[:3, :3], expected, atol=_ANGLE_TOL
        ):
            raise self.error(
                f"<link name='{CAMERA_OPTICAL_LINK}'> must sit at the camera sensor with z forward, "
                "x right, y down (joint rpy -pi/2 0 -pi/2 from the camera link)"
            )

    def chassis_x_extent(self) -> tuple[float, float, np.ndarray]:
        """Chassis box length along x and its corners in base_link (8, 3)."""
        pose, box = self.collision_geometry(CHASSIS_LINK, "box")
        size = self.floats(box, "size", 3, f"<link name='{CHASSIS_LINK}'> <box>")
        if np.any(size <= 0):
            raise self.error(f"<link name='{CHASSIS_LINK}'> <box>: size must be positive")
        signs = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], dtype=float)
        corners = (signs * size / 2.0) @ pose[:3, :3].T + pose[:3, 3]
        return float(corners[:, 0].min()), float(corners[:, 0].max()), corners

    def car_spec(self) -> CarSpec:
        centres, wheel_y, radius = self.wheels()
        x_min, x_max, corners = self.chassis_x_extent()
        y_min = min(wheel_y[:, 0].min(), corners[:, 1].min())
        y_max = max(wheel_y[:, 1].max(), corners[:, 1].max())
        return CarSpec(
            wheelbase=float(centres[:2, 0].mean() - centres[2:, 0].mean()),
            front_track=float(centres[0, 1] - centres[1, 1]),
            rear_track=float(centres[2, 1] - centres[3, 1]),
            wheel_radius=float(radius),
            mass=self.mass(),
            max_steer=self.max_steer(),
            length=x_max - x_min,
            width=float(y_max - y_min),
            camera=self.camera(),
            source=str(self.path),
        )

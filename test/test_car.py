"""CarSpec is read from urdf/deepracer.urdf: figures, edits, malformed files, geometry."""

from __future__ import annotations

import math
import shutil
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from deepracer_rl.car import CameraSpec, CarModelError, CarSpec, _rpy_matrix, default_urdf_path

SHIPPED = default_urdf_path()


@pytest.fixture(scope="module")
def car() -> CarSpec:
    return CarSpec.from_urdf()


def edited(tmp_path: Path, edit) -> Path:
    """A temp copy of the shipped URDF after `edit(root)` changed its XML tree."""
    tree = ET.parse(SHIPPED)
    edit(tree.getroot())
    path = tmp_path / "car.urdf"
    tree.write(path, xml_declaration=True, encoding="utf-8")
    return path


def joint(root: ET.Element, name: str) -> ET.Element:
    return root.find(f"joint[@name='{name}']")


def shift_origin(elem: ET.Element, dx=0.0, dy=0.0, dz=0.0) -> None:
    origin = elem.find("origin")
    x, y, z = (float(v) for v in origin.get("xyz").split())
    origin.set("xyz", f"{x + dx} {y + dy} {z + dz}")


def camera_element(root: ET.Element) -> ET.Element:
    return root.find("gazebo[@reference='camera_link']/sensor[@type='camera']/camera")


# ---- the shipped car -------------------------------------------------------------------------


def test_default_path_is_the_checkout_urdf():
    assert SHIPPED == Path(__file__).resolve().parents[1] / "urdf" / "deepracer.urdf"
    assert SHIPPED.is_file()


def test_shipped_urdf_has_the_deepracer_figures(car):
    assert car.wheelbase == pytest.approx(0.164, abs=1e-3)
    assert car.rear_track == pytest.approx(0.162, abs=1e-3)
    assert car.front_track == pytest.approx(0.159, abs=1e-3)
    assert car.wheel_radius == pytest.approx(0.035, abs=1e-4)
    assert car.mass == pytest.approx(7.5, abs=0.1)
    assert car.max_steer == pytest.approx(math.radians(30), abs=1e-4)
    assert car.wheelbase < car.length < 0.5
    assert car.rear_track < car.width < 0.3
    assert car.source == str(SHIPPED)


def test_shipped_camera_is_the_deepracer_camera(car):
    cam = car.camera
    assert isinstance(cam, CameraSpec)
    assert (cam.width, cam.height) == (640, 480)
    assert cam.hfov == pytest.approx(1.13)
    assert cam.rate_hz == pytest.approx(15)
    assert 0.2 <= cam.pitch <= 0.4  # looking down
    assert cam.z == pytest.approx(0.13, abs=0.01)
    assert car.wheelbase < cam.x < car.wheelbase + 0.1  # above/just ahead of the front axle
    assert cam.y == pytest.approx(0.0, abs=1e-9)
    assert 0 < cam.near < 0.1 < cam.far


def test_inertials_are_the_primitive_formulas_and_sum_to_the_mass(car):
    root = ET.parse(SHIPPED).getroot()
    total = 0.0
    for link in root.findall("link"):
        inertial = link.find("inertial")
        if inertial is None:
            continue
        m = float(inertial.find("mass").get("value"))
        total += m
        shape_parent = link.find("collision")
        if shape_parent is None:
            shape_parent = link.find("visual")
        origin = shape_parent.find("origin")
        rot = _rpy_matrix(*(float(v) for v in origin.get("rpy").split()))
        geometry = shape_parent.find("geometry")
        if geometry.find("box") is not None:
            a, b, c = (float(v) for v in geometry.find("box").get("size").split())
            local = m / 12 * np.diag([b * b + c * c, a * a + c * c, a * a + b * b])
        else:
            cyl = geometry.find("cylinder")
            r, h = float(cyl.get("radius")), float(cyl.get("length"))
            across = m / 12 * (3 * r * r + h * h)
            local = np.diag([across, across, m * r * r / 2])
        expected = rot @ local @ rot.T
        i = inertial.find("inertia")
        given = np.array(
            [
                [float(i.get("ixx")), float(i.get("ixy")), float(i.get("ixz"))],
                [float(i.get("ixy")), float(i.get("iyy")), float(i.get("iyz"))],
                [float(i.get("ixz")), float(i.get("iyz")), float(i.get("izz"))],
            ]
        )
        assert given == pytest.approx(expected, rel=1e-3, abs=1e-9), link.get("name")
        assert inertial.find("origin").get("xyz") == origin.get("xyz"), link.get("name")
    assert car.mass == pytest.approx(total)


# ---- geometry ----------------------------------------------------------------------------------


def test_wheel_contact_points_are_at_the_axles_and_half_tracks(car):
    points = car.wheel_contact_points()
    assert points.shape == (4, 2)
    np.testing.assert_allclose(
        points,
        [
            [car.wheelbase, car.front_track / 2],  # front-left
            [car.wheelbase, -car.front_track / 2],  # front-right
            [0.0, car.rear_track / 2],  # rear-left
            [0.0, -car.rear_track / 2],  # rear-right
        ],
    )


def test_intrinsics_keep_the_horizontal_fov_at_any_size(car):
    cam = car.camera
    fx, fy, cx, cy = cam.intrinsics()
    assert fx == fy == pytest.approx(320 / math.tan(cam.hfov / 2))
    assert (cx, cy) == (320, 240)
    fx_small, _, cx_small, cy_small = cam.intrinsics(160, 120)
    assert fx_small == pytest.approx(fx / 4)
    assert (cx_small, cy_small) == (80, 60)
    assert cam.intrinsics(160) == cam.intrinsics(160, 120)  # height keeps the aspect ratio
    assert 2 * math.atan(cx_small / fx_small) == pytest.approx(cam.hfov)


# ---- edits to a copy change the spec -------------------------------------------------------------


def test_moving_the_front_axle_changes_the_wheelbase(tmp_path, car):
    def edit(root):
        for name in ("left_steering_hinge_joint", "right_steering_hinge_joint"):
            shift_origin(joint(root, name), dx=0.02)

    moved = CarSpec.from_urdf(edited(tmp_path, edit))
    assert moved.wheelbase == pytest.approx(car.wheelbase + 0.02)
    assert moved.wheel_contact_points()[:2, 0] == pytest.approx([car.wheelbase + 0.02] * 2)
    assert moved.camera == car.camera
    assert moved.source == str(tmp_path / "car.urdf")


def test_widening_the_rear_axle_changes_rear_track_and_width(tmp_path, car):
    def edit(root):
        shift_origin(joint(root, "left_rear_wheel_joint"), dy=0.01)
        shift_origin(joint(root, "right_rear_wheel_joint"), dy=-0.01)

    wide = CarSpec.from_urdf(edited(tmp_path, edit))
    assert wide.rear_track == pytest.approx(car.rear_track + 0.02)
    assert wide.width == pytest.approx(car.width + 0.02)
    assert wide.front_track == pytest.approx(car.front_track)


def test_camera_sensor_edits_change_the_camera(tmp_path, car):
    def edit(root):
        camera = camera_element(root)
        camera.find("horizontal_fov").text = "1.2"
        camera.find("image/width").text = "320"
        camera.find("image/height").text = "240"
        root.find("gazebo[@reference='camera_link']/sensor/update_rate").text = "30"

    cam = CarSpec.from_urdf(edited(tmp_path, edit)).camera
    assert (cam.hfov, cam.width, cam.height, cam.rate_hz) == (1.2, 320, 240, 30.0)
    assert (cam.x, cam.z, cam.pitch) == pytest.approx((car.camera.x, car.camera.z, car.camera.pitch))


def test_steering_limit_edit_changes_max_steer(tmp_path):
    def edit(root):
        for name in ("left_steering_hinge_joint", "right_steering_hinge_joint"):
            joint(root, name).find("limit").set("lower", "-0.4")

    assert CarSpec.from_urdf(edited(tmp_path, edit)).max_steer == pytest.approx(0.4)


def test_camera_pose_composes_fixed_joints_with_rpy(tmp_path):
    """A pitched mount joint then an offset camera joint: the offset follows the mount's pitch."""
    root = ET.parse(SHIPPED).getroot()
    chassis_x, _, chassis_z = (float(v) for v in joint(root, "chassis_joint").find("origin").get("xyz").split())

    def edit(root):
        ET.SubElement(root, "link", name="camera_mount")
        mount = ET.SubElement(root, "joint", name="camera_mount_joint", type="fixed")
        ET.SubElement(mount, "origin", xyz="0.1 0 0.1", rpy="0 0.3 0")
        ET.SubElement(mount, "parent", link="chassis")
        ET.SubElement(mount, "child", link="camera_mount")
        cam = joint(root, "camera_joint")
        cam.find("origin").set("xyz", "0.05 0 0")
        cam.find("origin").set("rpy", "0 0 0")
        cam.find("parent").set("link", "camera_mount")

    cam = CarSpec.from_urdf(edited(tmp_path, edit)).camera
    assert cam.x == pytest.approx(chassis_x + 0.1 + 0.05 * math.cos(0.3))
    assert cam.z == pytest.approx(chassis_z + 0.1 - 0.05 * math.sin(0.3))
    assert cam.pitch == pytest.approx(0.3)


# ---- malformed files -------------------------------------------------------------------------------


def remove(parent_path: str, child_path: str):
    def edit(root):
        parent = root if parent_path == "." else root.find(parent_path)
        parent.remove(parent.find(child_path))

    return edit


def set_attr(elem_path: str, attr: str, value: str):
    return lambda root: root.find(elem_path).set(attr, value)


MALFORMED = {
    "missing camera_link": (remove(".", "link[@name='camera_link']"), "camera_link"),
    "missing optical link": (remove(".", "link[@name='camera_optical_link']"), "camera_optical_link"),
    "missing steering joint": (remove(".", "joint[@name='left_steering_hinge_joint']"), "left_steering_hinge_joint"),
    "missing rear wheel joint": (remove(".", "joint[@name='right_rear_wheel_joint']"), "right_rear_wheel_joint"),
    "missing limit upper": (
        lambda root: joint(root, "right_steering_hinge_joint").find("limit").attrib.pop("upper"),
        "upper",
    ),
    "non-numeric xyz": (
        set_attr("joint[@name='left_steering_hinge_joint']/origin", "xyz", "0.08 left 0.01"),
        "left_steering_hinge_joint",
    ),
    "non-numeric mass": (set_attr("link[@name='chassis']/inertial/mass", "value", "heavy"), "heavy"),
    "missing camera sensor": (remove(".", "gazebo[@reference='camera_link']"), "sensor"),
    "missing horizontal_fov": (
        remove("gazebo[@reference='camera_link']/sensor/camera", "horizontal_fov"),
        "horizontal_fov",
    ),
    "non-numeric image width": (
        lambda root: setattr(camera_element(root).find("image/width"), "text", "wide"),
        "image/width",
    ),
    "missing wheel cylinder": (remove("link[@name='left_front_wheel']", "collision"), "left_front_wheel"),
    "missing chassis box": (remove("link[@name='chassis']", "collision"), "chassis"),
    "base_link not on the ground": (
        lambda root: shift_origin(joint(root, "chassis_joint"), dz=0.01),
        "base_link",
    ),
    "base_link not below the rear axle": (
        lambda root: shift_origin(joint(root, "chassis_joint"), dx=0.05),
        "rear axle",
    ),
    "steering hinge fixed": (set_attr("joint[@name='left_steering_hinge_joint']", "type", "fixed"), "revolute"),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_urdf_raises_naming_file_and_element(tmp_path, case):
    edit, expected = MALFORMED[case]
    path = edited(tmp_path, edit)
    with pytest.raises(CarModelError) as info:
        CarSpec.from_urdf(path)
    assert str(path) in str(info.value)
    assert expected in str(info.value)
    assert isinstance(info.value, ValueError)


def test_xml_syntax_error_raises_naming_the_file(tmp_path):
    path = tmp_path / "broken.urdf"
    text = SHIPPED.read_text()
    path.write_text(text[: len(text) // 2])
    with pytest.raises(CarModelError, match="XML") as info:
        CarSpec.from_urdf(path)
    assert str(path) in str(info.value)


def test_missing_file_raises_naming_the_file(tmp_path):
    path = tmp_path / "nowhere.urdf"
    with pytest.raises(CarModelError) as info:
        CarSpec.from_urdf(path)
    assert str(path) in str(info.value)


def test_spec_reads_a_copy_with_no_other_changes(tmp_path, car):
    copy = tmp_path / "copy.urdf"
    shutil.copy(SHIPPED, copy)
    again = CarSpec.from_urdf(copy)
    assert again.camera == car.camera
    assert (again.wheelbase, again.mass, again.width, again.length) == (car.wheelbase, car.mass, car.width, car.length)


def _installed_copy_of_car_module(tmp_path: Path, monkeypatch):
    """car.py (and resources.py) imported from a package with no `urdf/` beside it, as installed."""
    import importlib

    pkg = tmp_path / "site" / "installed_pkg"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").touch()
    for name in ("car.py", "resources.py"):
        shutil.copy(Path(__file__).resolve().parents[1] / "deepracer_rl" / name, pkg / name)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    for name in ("installed_pkg", "installed_pkg.car", "installed_pkg.resources"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    return importlib.import_module("installed_pkg.car")


def test_installed_package_finds_the_urdf_in_the_ament_share_dir(tmp_path, monkeypatch):
    pytest.importorskip("ament_index_python")
    prefix = tmp_path / "install"
    (prefix / "share" / "ament_index" / "resource_index" / "packages").mkdir(parents=True)
    (prefix / "share" / "ament_index" / "resource_index" / "packages" / "deepracer_rl").touch()
    urdf = prefix / "share" / "deepracer_rl" / "urdf" / "deepracer.urdf"
    urdf.parent.mkdir(parents=True)
    shutil.copy(SHIPPED, urdf)
    monkeypatch.setenv("AMENT_PREFIX_PATH", str(prefix))
    module = _installed_copy_of_car_module(tmp_path, monkeypatch)
    assert module.default_urdf_path() == urdf
    assert module.CarSpec.from_urdf().source == str(urdf)


def test_without_ament_the_urdf_is_under_sys_prefix(tmp_path, monkeypatch):
    monkeypatch.setenv("AMENT_PREFIX_PATH", str(tmp_path / "empty"))
    module = _installed_copy_of_car_module(tmp_path, monkeypatch)
    assert module.default_urdf_path() == Path(sys.prefix) / "share" / "deepracer_rl" / "urdf" / "deepracer.urdf"

"""The lockstep hot path's small messages straight from and to their serialized (CDR) bytes.

Turning a received nav_msgs/Odometry into rclpy's Python objects costs ~50 us (a dozen
nested messages) and building and converting one to publish ~30 us; on a lockstep step of
~1 ms that matters. The few fields the contract needs sit at offsets that follow from the
CDR rules (every RMW in ROS 2 serializes messages as CDR): decode and encode them with
`struct`. Anything unexpected falls back to `rclpy.serialization`, so the result is always
the same as deserializing the message; bytes that are no such message raise ValueError.
"""

from __future__ import annotations

import struct

from geometry_msgs.msg import Twist
from nav_msgs.msg import Odometry
from rclpy.serialization import deserialize_message, serialize_message

from ..sim import OdometryUncertainty
from .contract import yaw_from_quaternion

# Encapsulation kinds (first two bytes): byte order and the largest alignment of primitives.
_ENCAPSULATION = {
    b"\x00\x00": (">", 8),  # CDR big endian (XCDR1)
    b"\x00\x01": ("<", 8),  # CDR little endian (XCDR1)
    b"\x00\x06": (">", 4),  # plain XCDR2 big endian
    b"\x00\x07": ("<", 4),  # plain XCDR2 little endian
}
_HEADER = 4  # encapsulation bytes; alignment counts from the end of them
_COVARIANCE = 36 * 8


class _Layout:
    __slots__ = ("align8", "order")

    def __init__(self, raw: bytes):
        kind = _ENCAPSULATION.get(bytes(raw[:2]))
        if kind is None:
            raise ValueError(f"unknown CDR encapsulation {bytes(raw[:2])!r}")
        self.order, self.align8 = kind

    def align(self, offset: int, size: int) -> int:
        a = min(size, self.align8)
        return (offset + a - 1) & ~(a - 1)

    def string_end(self, raw: bytes, offset: int) -> int:
        """Offset just after a CDR string starting (before alignment) at `offset`."""
        offset = self.align(offset, 4)
        (length,) = struct.unpack_from(self.order + "I", raw, _HEADER + offset)
        end = offset + 4 + length
        if _HEADER + end > len(raw):
            raise ValueError("string runs past the end of the message")
        return end


def _deserialize(raw: bytes, msg_type):
    try:
        return deserialize_message(bytes(raw), msg_type)
    except Exception as exc:  # rclpy raises RMWError (not a ValueError) for undecodable bytes
        raise ValueError(f"cannot decode a {msg_type.__name__} message of {len(raw)} bytes: {exc}") from None


def _odometry_pose_offset(raw: bytes, layout: _Layout) -> int:
    """Offset of pose.pose.position.x (after header.stamp, header.frame_id, child_frame_id)."""
    offset = layout.string_end(raw, 8)  # stamp: int32 sec, uint32 nanosec
    offset = layout.string_end(raw, offset)
    return layout.align(offset, 8)


def decode_odometry(raw: bytes) -> tuple[int, float, float, float, float, float]:
    """Serialized nav_msgs/Odometry -> (stamp ns, x, y, yaw, linear.x, angular.z)."""
    try:
        layout = _Layout(raw)
        sec, nanosec = struct.unpack_from(layout.order + "iI", raw, _HEADER)
        pose = _odometry_pose_offset(raw, layout)
        x, y, _, qx, qy, qz, qw = struct.unpack_from(layout.order + "7d", raw, _HEADER + pose)
        twist = pose + 7 * 8 + _COVARIANCE
        v, _, _, _, _, w = struct.unpack_from(layout.order + "6d", raw, _HEADER + twist)
    except (ValueError, struct.error):
        msg = _deserialize(raw, Odometry)
        p, q = msg.pose.pose.position, msg.pose.pose.orientation
        sec, nanosec = msg.header.stamp.sec, msg.header.stamp.nanosec
        x, y, qx, qy, qz, qw = p.x, p.y, q.x, q.y, q.z, q.w
        v, w = msg.twist.twist.linear.x, msg.twist.twist.angular.z
    return sec * 1_000_000_000 + nanosec, x, y, yaw_from_quaternion(qx, qy, qz, qw), v, w


def decode_twist(raw: bytes) -> tuple[float, float]:
    """Serialized geometry_msgs/Twist -> (linear.x, angular.z)."""
    try:
        layout = _Layout(raw)
        v, _, _, _, _, w = struct.unpack_from(layout.order + "6d", raw, _HEADER)
    except (ValueError, struct.error):
        msg = _deserialize(raw, Twist)
        v, w = msg.linear.x, msg.angular.z
    return v, w


class OdometryEncoder:
    """Serialized nav_msgs/Odometry with fixed frame ids and covariances; only stamp, pose and twist change.

    The covariances are the simulator's stated odometry uncertainty (`sim.OdometryUncertainty`).
    """

    def __init__(self, frame_id: str, child_frame_id: str, uncertainty: OdometryUncertainty | None = None):
        uncertainty = uncertainty or OdometryUncertainty()
        template = Odometry()
        template.header.frame_id = frame_id
        template.child_frame_id = child_frame_id
        template.pose.pose.orientation.w = 1.0
        template.pose.covariance = uncertainty.pose_covariance()
        template.twist.covariance = uncertainty.twist_covariance()
        self._buffer = bytearray(serialize_message(template))
        layout = _Layout(self._buffer)
        self._order = layout.order
        self._pose = _HEADER + _odometry_pose_offset(self._buffer, layout)
        self._twist = self._pose + 7 * 8 + _COVARIANCE

    def encode(self, stamp_ns: int, x: float, y: float, qz: float, qw: float, v: float, yaw_rate: float) -> bytes:
        buf, order = self._buffer, self._order
        struct.pack_into(order + "iI", buf, _HEADER, stamp_ns // 1_000_000_000, stamp_ns % 1_000_000_000)
        struct.pack_into(order + "7d", buf, self._pose, x, y, 0.0, 0.0, 0.0, qz, qw)
        struct.pack_into(order + "6d", buf, self._twist, v, 0.0, 0.0, 0.0, 0.0, yaw_rate)
        return bytes(buf)

"""ROS 2 bags of drives, and replaying a policy on a bag's frames offline (rosbags: no ROS install needed).

`BagRecorder` writes a drive (an `evaluate` lap's `LapStep`s) as a rosbag2 bag, MCAP (Jazzy's
default) or sqlite3: the camera as sensor_msgs/msg/Image rgb8 (rendered at the car's pose, at the
size asked for), the command as geometry_msgs/msg/Twist (the topic contract's mapping) and the
pose as nav_msgs/msg/Odometry, stamped with sim time; the topic names are the caller's (the CLI
passes the topic contract's).

`replay_bag` runs an exported policy on a bag's camera frames, as the inference node would
(`inference.PolicyRunner`, the frame check included), and writes per frame what the policy would
command beside what the car did (the command that followed the frame), plus a summary comparing
the recorded frames' statistics with simulated frames' (`frame_statistics`: the sim-to-real gap in
numbers). Camera topics of type sensor_msgs/msg/Image, sensor_msgs/msg/CompressedImage or the
DeepRacer's deepracer_interfaces_pkg/msg/CameraMsg (`/camera_pkg/video_mjpeg`, bgr8 `images[]`,
the first image used) are read, commands of type Twist or the DeepRacer's ServoCtrlMsg
(`/ctrl_pkg/servo_msg`); the two DeepRacer types are registered from their .msg text.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .camera import OBSERVATION_HEIGHT, OBSERVATION_WIDTH, CameraRenderer
from .car import BASE_LINK, CAMERA_OPTICAL_LINK, ODOM_FRAME, CarSpec
from .evaluate import LapStep
from .inference import Command, DegenerateFrame, PolicyRunner, ServoMapping, UnsafeOutput, load_policy, twist
from .track import Track

CAMERA_MSG = "deepracer_interfaces_pkg/msg/CameraMsg"
SERVO_MSG = "deepracer_interfaces_pkg/msg/ServoCtrlMsg"
# deepracer_interfaces_pkg's .msg files (aws-deepracer-interfaces-pkg), as on every DeepRacer.
DEEPRACER_MSGS = {CAMERA_MSG: "sensor_msgs/Image[] images\n", SERVO_MSG: "float32 angle\nfloat32 throttle\n"}
IMAGE = "sensor_msgs/msg/Image"
COMPRESSED = "sensor_msgs/msg/CompressedImage"
TWIST = "geometry_msgs/msg/Twist"
ODOMETRY = "nav_msgs/msg/Odometry"
IMAGE_TYPES = (IMAGE, COMPRESSED, CAMERA_MSG)
COMMAND_TYPES = (TWIST, SERVO_MSG)
STORAGES = ("mcap", "sqlite3")
RECORD_SIZE = (OBSERVATION_WIDTH, OBSERVATION_HEIGHT)  # default recorded camera: DeepRacer's 160x120
STATS_SIZE = (OBSERVATION_WIDTH, OBSERVATION_HEIGHT)  # frames are compared at this size
CSV_COLUMNS = (
    "frame",
    "t_s",
    "policy_steering_deg",
    "policy_speed",
    "policy_angle",
    "policy_throttle",
    "car_steering_deg",
    "car_speed",
    "car_angle",
    "car_throttle",
    "steering_diff_deg",
    "note",
)


class BagError(ValueError):
    """A bag cannot be written or read as asked; the message names the bag (and topic)."""


def typestore() -> Any:
    """rosbags' ROS 2 Jazzy message types plus the DeepRacer's CameraMsg and ServoCtrlMsg."""
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    store = get_typestore(Stores.ROS2_JAZZY)
    types: dict = {}
    for name, text in DEEPRACER_MSGS.items():
        types.update(get_types_from_msg(text, name))
    store.register(types)
    return store


def _stamp(store: Any, seconds: float) -> Any:
    sec, nanosec = divmod(int(round(seconds * 1e9)), 10**9)
    return store.types["builtin_interfaces/msg/Time"](sec=sec, nanosec=nanosec)


def _header(store: Any, seconds: float, frame_id: str) -> Any:
    return store.types["std_msgs/msg/Header"](stamp=_stamp(store, seconds), frame_id=frame_id)


@dataclass(frozen=True)
class BagTopics:
    """Where a recording puts the camera (Image), the command (Twist) and the pose (Odometry)."""

    image: str
    cmd_vel: str
    odom: str


class BagRecorder:
    """A drive -> a rosbag2 bag: `observer(core)` for `evaluate_target`, which calls `observe` with every
    `LapStep`; then `close`."""

    def __init__(
        self,
        path: str | os.PathLike,
        topics: BagTopics,
        size: tuple[int, int] = RECORD_SIZE,
        storage: str = "mcap",
    ):
        from rosbags.rosbag2 import StoragePlugin, Writer

        self.path = Path(path)
        if storage not in STORAGES:
            raise BagError(f"{self.path}: unknown storage {storage!r}; choose {' or '.join(STORAGES)}")
        if self.path.exists():
            raise BagError(f"{self.path}: already exists (a bag is a new directory)")
        if not self.path.parent.is_dir():
            raise BagError(f"{self.path}: no such directory {self.path.parent}")
        width, height = size
        if not (16 <= width <= 4096 and 16 <= height <= 4096):
            raise BagError(f"{self.path}: camera size {width}x{height} out of range (16..4096 each way)")
        self.size = (int(width), int(height))
        self.wheelbase = CarSpec.from_urdf().wheelbase
        self.renderer: CameraRenderer | None = None
        self.store = typestore()
        plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
        self.writer = Writer(self.path, version=9, storage_plugin=plugin)
        self.writer.open()
        self.connections = {
            IMAGE: self.writer.add_connection(topics.image, IMAGE, typestore=self.store),
            TWIST: self.writer.add_connection(topics.cmd_vel, TWIST, typestore=self.store),
            ODOMETRY: self.writer.add_connection(topics.odom, ODOMETRY, typestore=self.store),
        }
        self.frames = 0

    def observer(self, core: Any) -> Callable[[LapStep], None]:
        """The step observer for a race (`race.RaceCore`): frames are rendered on its track with its camera."""
        camera = core.car.camera
        self.renderer = CameraRenderer(core.track, camera, self.size[0], self.size[1], grayscale=False)
        self.wheelbase = core.car.wheelbase
        return self.observe

    def _write(self, msgtype: str, seconds: float, message: Any) -> None:
        data = self.store.serialize_cdr(message, msgtype)
        self.writer.write(self.connections[msgtype], int(round(seconds * 1e9)), data)

    def observe(self, step: LapStep) -> None:
        """Write the camera frame at the step's pose, its odometry, then the command that answered it."""
        if self.renderer is None:
            raise BagError(f"{self.path}: observe() before observer(core): no track to render the camera on")
        types = self.store.types
        t = step.sim_time
        rgb = self.renderer.render(step.pose[None])[0]
        height, width = rgb.shape[:2]
        image = types[IMAGE](
            header=_header(self.store, t, CAMERA_OPTICAL_LINK),
            height=height,
            width=width,
            encoding="rgb8",
            is_bigendian=0,
            step=width * 3,
            data=rgb.reshape(-1),
        )
        self._write(IMAGE, t, image)
        x, y, yaw = (float(v) for v in step.pose)
        vector, point = types["geometry_msgs/msg/Vector3"], types["geometry_msgs/msg/Point"]
        quaternion = types["geometry_msgs/msg/Quaternion"](x=0.0, y=0.0, z=math.sin(yaw / 2), w=math.cos(yaw / 2))
        odom = types[ODOMETRY](
            header=_header(self.store, t, ODOM_FRAME),
            child_frame_id=BASE_LINK,
            pose=types["geometry_msgs/msg/PoseWithCovariance"](
                pose=types["geometry_msgs/msg/Pose"](position=point(x=x, y=y, z=0.0), orientation=quaternion),
                covariance=np.zeros(36),
            ),
            twist=types["geometry_msgs/msg/TwistWithCovariance"](
                twist=types[TWIST](
                    linear=vector(x=step.speed_before, y=0.0, z=0.0), angular=vector(x=0.0, y=0.0, z=0.0)
                ),
                covariance=np.zeros(36),
            ),
        )
        self._write(ODOMETRY, t, odom)
        linear, angular = twist(Command(step.steering_deg, step.speed), self.wheelbase)
        command = types[TWIST](linear=vector(x=linear, y=0.0, z=0.0), angular=vector(x=0.0, y=0.0, z=angular))
        self._write(TWIST, t + 1e-6, command)  # the answer follows its frame
        self.frames += 1

    def close(self) -> None:
        self.writer.close()


# ---- reading ---------------------------------------------------------------------------------------


def image_from_message(message: Any, msgtype: str, where: str) -> np.ndarray:
    """(H, W, 3) RGB uint8 of a camera message (Image rgb8/bgr8/mono8, CompressedImage, CameraMsg)."""
    if msgtype == CAMERA_MSG:
        if len(message.images) == 0:
            raise BagError(f"{where}: a CameraMsg without images")
        return image_from_message(message.images[0], IMAGE, where)  # a stereo car's first camera
    if msgtype == COMPRESSED:
        bgr = cv2.imdecode(np.frombuffer(bytes(message.data), dtype=np.uint8), cv2.IMREAD_COLOR)
        if bgr is None:
            raise BagError(f"{where}: cannot decode the compressed image (format {message.format!r})")
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    channels = {"rgb8": 3, "bgr8": 3, "mono8": 1}.get(message.encoding)
    if channels is None:
        raise BagError(f"{where}: image encoding {message.encoding!r} (rgb8, bgr8 or mono8 expected)")
    data = np.frombuffer(bytes(message.data), dtype=np.uint8)
    if message.step < message.width * channels or len(data) < message.step * message.height:
        raise BagError(f"{where}: {len(data)} bytes for a {message.width}x{message.height} {message.encoding} image")
    rows = data[: message.step * message.height].reshape(message.height, message.step)
    pixels = rows[:, : message.width * channels].reshape(message.height, message.width, channels)
    if message.encoding == "bgr8":
        return pixels[..., ::-1].copy()
    if message.encoding == "mono8":
        return np.repeat(pixels, 3, axis=2)
    return pixels.copy()


def frame_statistics(rgb: np.ndarray) -> dict[str, float]:
    """Camera frame statistics at STATS_SIZE: brightness (mean gray 0..255), contrast (its std),
    edge density (fraction of Canny edge pixels), saturation (mean HSV S, 0..1), sharpness
    (variance of the Laplacian) and clipped (fraction of pixels at 0..2 or 253..255)."""
    small = cv2.resize(rgb, STATS_SIZE, interpolation=cv2.INTER_AREA)
    gray = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
    return {
        "brightness": float(gray.mean()),
        "contrast": float(gray.std()),
        "edge_density": float(np.count_nonzero(cv2.Canny(gray, 50, 150)) / gray.size),
        "saturation": float(cv2.cvtColor(small, cv2.COLOR_RGB2HSV)[..., 1].mean() / 255.0),
        "sharpness": float(cv2.Laplacian(gray, cv2.CV_64F).var()),
        "clipped": float(np.mean((gray <= 2) | (gray >= 253))),
    }


@dataclass
class BagContents:
    """What a bag offers a replay: its camera and command topics (name, type) and its odometry topic."""

    image: tuple[str, str]
    command: tuple[str, str] | None
    odom: str | None
    topics: dict[str, str] = field(default_factory=dict)  # every topic -> its type


def _choose(topics: dict[str, str], wanted: str | None, types: tuple[str, ...], what: str, bag: Path) -> Any:
    if wanted is not None:
        if wanted not in topics:
            raise BagError(f"{bag}: no topic {wanted} (it has {', '.join(sorted(topics)) or 'none'})")
        if topics[wanted] not in types:
            raise BagError(f"{bag}: topic {wanted} is {topics[wanted]}, not a {what} ({', '.join(types)})")
        return wanted, topics[wanted]
    found = sorted((types.index(t), name) for name, t in topics.items() if t in types)
    return (found[0][1], topics[found[0][1]]) if found else None


def _open(bag: Path) -> Any:
    from rosbags.highlevel import AnyReader

    if not bag.exists():
        raise FileNotFoundError(f"{bag}: no such bag")
    try:
        reader = AnyReader([bag], default_typestore=typestore())
        reader.open()
    except Exception as exc:  # rosbags raises its own reader errors for what is not a bag
        raise BagError(f"{bag}: not a readable ROS bag ({exc})") from None
    return reader


def bag_contents(bag: Path, image_topic: str | None = None, command_topic: str | None = None) -> BagContents:
    """The camera and command topics a replay uses (given, or the first of each kind found)."""
    reader = _open(bag)
    try:
        topics = {c.topic: c.msgtype for c in reader.connections}
    finally:
        reader.close()
    image = _choose(topics, image_topic, IMAGE_TYPES, "camera topic", bag)
    if image is None:
        listing = ", ".join(f"{name} ({kind})" for name, kind in sorted(topics.items())) or "no topics"
        raise BagError(f"{bag}: no camera topic of type {', '.join(IMAGE_TYPES)} (it has {listing})")
    command = _choose(topics, command_topic, COMMAND_TYPES, "command topic", bag)
    odom = next((name for name, kind in sorted(topics.items()) if kind == ODOMETRY), None)
    return BagContents(image, command, odom, topics)


def read_messages(bag: Path, topics: list[str]) -> Iterator[tuple[str, str, float, Any]]:
    """(topic, type, bag time s, message) of `topics` in time order."""
    reader = _open(bag)
    try:
        connections = [c for c in reader.connections if c.topic in topics]
        for connection, timestamp, raw in reader.messages(connections=connections):
            try:
                message = reader.deserialize(raw, connection.msgtype)
            except Exception as exc:  # a message whose bytes do not match its type
                raise BagError(f"{bag}: {connection.topic}: cannot decode a {connection.msgtype} ({exc})") from None
            yield connection.topic, connection.msgtype, timestamp * 1e-9, message
    finally:
        reader.close()


# ---- replay ------------------------------------------------------------------------------------


@dataclass
class ReplaySummary:
    """Figures of a replay: agreement of the policy with the car, and the frames' statistics."""

    bag: str
    model: str
    image_topic: str
    command_topic: str | None
    frames: int
    compared: int  # frames with a car command after them
    refused: int  # frames the policy would not drive on (frame check), or unsafe outputs
    steering_mae_deg: float | None
    speed_mae: float | None
    throttle_mae: float | None  # servo units, policy mapped with throttle_scale 1 (ServoCtrlMsg bags only)
    same_action: float | None  # fraction of compared frames where both pick the same discrete action
    recorded: dict[str, float]  # mean frame statistics of the bag's frames
    simulated: dict[str, float]  # of simulated frames (at the bag's poses, else along the track)
    simulated_from: str
    csv: str

    def gap(self) -> dict[str, dict[str, float | None]]:
        """Per statistic: recorded, simulated, difference and ratio (recorded / simulated)."""
        return {
            key: {
                "recorded": round(self.recorded[key], 4),
                "simulated": round(self.simulated[key], 4),
                "difference": round(self.recorded[key] - self.simulated[key], 4),
                "ratio": round(self.recorded[key] / self.simulated[key], 4) if self.simulated[key] else None,
            }
            for key in self.recorded
        }

    def as_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k not in ("recorded", "simulated")}
        out["frame_statistics"] = self.gap()
        return out


def _car_command(msgtype: str, message: Any, wheelbase: float, servo: ServoMapping) -> dict[str, float | None]:
    """The car's command in the policy's units (steering degrees, speed m/s; a servo message has no speed,
    its angle is scaled by the action space's largest steering, as the navigation node maps it)."""
    if msgtype == TWIST:
        speed, yaw_rate = float(message.linear.x), float(message.angular.z)
        steering = math.degrees(math.atan(yaw_rate * wheelbase / speed)) if speed > 1e-6 else 0.0
        return {"steering_deg": steering, "speed": speed, "angle": None, "throttle": None}
    angle, throttle = float(message.angle), float(message.throttle)
    steering = angle * servo.max_steering_deg
    return {"steering_deg": steering, "speed": None, "angle": angle, "throttle": throttle}


def _mean_statistics(rows: list[dict[str, float]]) -> dict[str, float]:
    return {key: float(np.mean([r[key] for r in rows])) for key in rows[0]} if rows else {}


def replay_bag(
    bag: str | os.PathLike,
    model: str | os.PathLike,
    out_dir: str | os.PathLike | None = None,
    image_topic: str | None = None,
    command_topic: str | None = None,
    track: str = "reinvent_base",
    runtime: str = "auto",
) -> ReplaySummary:
    """Run `model` (an export dir or model.xml) on the bag's frames; write actions.csv and summary.json
    into out_dir (default: BAG-replay beside the bag) and return the summary."""
    bag = Path(bag)
    contents = bag_contents(bag, image_topic, command_topic)
    policy = load_policy(model, runtime=runtime)
    runner = PolicyRunner(policy)
    car = CarSpec.from_urdf()
    servo = ServoMapping.for_actions(policy.actions)
    out = Path(out_dir) if out_dir is not None else bag.with_name(bag.name + "-replay")
    out.mkdir(parents=True, exist_ok=True)
    csv_path = out / "actions.csv"
    topics = [contents.image[0]] + ([contents.command[0]] if contents.command else [])
    topics += [contents.odom] if contents.odom else []
    recorded_stats: list[dict[str, float]] = []
    poses: list[np.ndarray] = []
    pending: list[Any] | None = None  # the row of the newest frame, waiting for the car's command
    rows: list[list[Any]] = []
    first_time = None
    sizes = set()
    with open(csv_path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS)

        def flush() -> None:
            if pending is not None:
                writer.writerow(pending)
                rows.append(pending)

        for topic, msgtype, t, message in read_messages(bag, topics):
            first_time = t if first_time is None else first_time
            if topic == contents.odom:
                q = message.pose.pose.orientation
                yaw = math.atan2(2 * (q.w * q.z + q.x * q.y), 1 - 2 * (q.y * q.y + q.z * q.z))
                poses.append(np.array([message.pose.pose.position.x, message.pose.pose.position.y, yaw]))
                continue
            if topic == contents.image[0]:
                flush()
                image = image_from_message(message, msgtype, f"{bag}: {topic} frame {len(rows)}")
                sizes.add(image.shape[1::-1])
                recorded_stats.append(frame_statistics(image))
                note = ""
                try:
                    command = runner.act(image)
                except (DegenerateFrame, UnsafeOutput) as exc:
                    command, note = Command.stop(), f"stop: {exc}"
                    runner.reset()
                angle, throttle = servo(command)
                pending = [len(rows), round(t - first_time, 4), round(command.steering_deg, 3)]
                pending += [round(command.speed, 3), round(angle, 4), round(throttle, 4), "", "", "", "", "", note]
                continue
            if pending is not None and pending[6] == "":  # the first command after the frame: the car's answer
                car_cmd = _car_command(msgtype, message, car.wheelbase, servo)
                pending[6] = round(car_cmd["steering_deg"], 3)
                pending[7] = "" if car_cmd["speed"] is None else round(car_cmd["speed"], 3)
                if car_cmd["angle"] is not None:  # the servo's own units: ServoCtrlMsg only
                    pending[8], pending[9] = round(car_cmd["angle"], 4), round(car_cmd["throttle"], 4)
                pending[10] = round(abs(pending[2] - pending[6]), 3)
        flush()
    if not rows:
        raise BagError(f"{bag}: no frames on {contents.image[0]}")
    compared = [r for r in rows if r[6] != ""]
    with_speed = [r for r in compared if r[7] != ""]
    with_servo = [r for r in compared if r[9] != ""]
    same = None
    if policy.actions.kind == "discrete" and with_speed:
        from .simtrace import action_index

        same = float(
            np.mean(
                [
                    action_index(policy.actions, r[2], r[3]) == action_index(policy.actions, r[6], r[7])
                    for r in with_speed
                ]
            )
        )
    simulated, source = _simulated_statistics(track, sorted(sizes)[0], poses, len(rows))
    summary = ReplaySummary(
        bag=str(bag),
        model=str(model),
        image_topic=f"{contents.image[0]} ({contents.image[1]})",
        command_topic=f"{contents.command[0]} ({contents.command[1]})" if contents.command else None,
        frames=len(rows),
        compared=len(compared),
        refused=sum(1 for r in rows if r[11]),
        steering_mae_deg=round(float(np.mean([r[10] for r in compared])), 3) if compared else None,
        speed_mae=round(float(np.mean([abs(r[3] - r[7]) for r in with_speed])), 3) if with_speed else None,
        throttle_mae=round(float(np.mean([abs(r[5] - r[9]) for r in with_servo])), 4) if with_servo else None,
        same_action=None if same is None else round(same, 4),
        recorded=_mean_statistics(recorded_stats),
        simulated=simulated,
        simulated_from=source,
        csv=str(csv_path),
    )
    (out / "summary.json").write_text(json.dumps(summary.as_dict(), indent=2) + "\n", encoding="utf-8")
    return summary


def _simulated_statistics(
    track_name: str, size: tuple[int, int], poses: list[np.ndarray], count: int
) -> tuple[dict[str, float], str]:
    """Mean statistics of simulated frames at the bag's camera size: at its odometry poses when it has
    them, else at `count` (at most 200) poses along the track's centre line."""
    track = Track.load(track_name)
    renderer = CameraRenderer(track, CarSpec.from_urdf().camera, size[0], size[1], grayscale=False)
    if poses:
        chosen = np.array(poses)[np.linspace(0, len(poses) - 1, min(len(poses), 200)).astype(int)]
        source = f"the bag's odometry poses on {track.name}"
    else:
        arcs = np.linspace(0.0, track.length, min(max(count, 1), 200), endpoint=False)
        points, headings = track.point_at(arcs)
        chosen = np.column_stack([points, headings])
        source = f"the centre line of {track.name}"
    stats = [frame_statistics(frame) for frame in renderer.render(chosen)]
    return _mean_statistics(stats), source


def format_replay(summary: ReplaySummary) -> str:
    """The human-readable report of `deepracer-rl replay`."""
    lines = [
        f"replayed {summary.frames} frames of {summary.image_topic} with {summary.model}",
        f"  car commands: {summary.command_topic or 'none in the bag'}; compared {summary.compared} frames"
        + (f", policy refused {summary.refused}" if summary.refused else ""),
    ]
    if summary.steering_mae_deg is not None:
        lines.append(f"  steering: mean |policy - car| {summary.steering_mae_deg:.2f} deg")
    if summary.speed_mae is not None:
        lines.append(f"  speed:    mean |policy - car| {summary.speed_mae:.3f} m/s")
    if summary.throttle_mae is not None:
        lines.append(f"  throttle: mean |policy - car| {summary.throttle_mae:.3f} (servo units, policy at scale 1)")
    if summary.same_action is not None:
        lines.append(f"  same discrete action on {100 * summary.same_action:.1f} % of frames")
    lines.append(f"  frame statistics, recorded vs simulated ({summary.simulated_from}):")
    lines.append(f"    {'':<13} {'recorded':>10} {'simulated':>10} {'difference':>11} {'ratio':>7}")
    for key, row in summary.gap().items():
        ratio = "-" if row["ratio"] is None else f"{row['ratio']:.3f}"
        lines.append(
            f"    {key:<13} {row['recorded']:>10.4g} {row['simulated']:>10.4g} {row['difference']:>11.4g} {ratio:>7}"
        )
    lines.append(f"  wrote {summary.csv} and summary.json")
    return "\n".join(lines)

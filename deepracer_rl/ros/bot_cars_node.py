"""bot_cars_node: the objects of a race in Gazebo, driven as the embedded simulator drives them.

The world variant of a race with objects (`deepracer_rl.world`, `gazebo.launch.py race_type:=...`)
holds the obstacles and the bot cars as static models at the poses `world_objects.ObjectWorld`
starts them at for the race's world config and seed. This node runs that same `ObjectWorld` (same
track, config and seed, so it starts where the SDF put them) on sim time, as DeepRacer's simapp
drives its bot cars by setting their model states every step:

* `/clock` (rosgraph_msgs/Clock, Gazebo's sim time through the bridge): every control period of
  sim time (the URDF camera rate, in gz-sim's integer nanoseconds: `world.physics_step`) the world
  is stepped one period; when the clock jumped several periods, one step per period (lane changes
  are scheduled per step, as in the embedded simulator). A clock that goes back (a world reset)
  restarts the episode.
* Every bot car's new pose is sent to Gazebo with the world's set_pose service
  (`ros_gz_interfaces/srv/SetEntityPose` on `/world/<world>/set_pose`, which ros_gz_bridge forwards
  to gz-sim: `contract.set_pose_bridge_argument`): model `bot_car_<i>` (`world.object_model_names`),
  position x, y in the world (track) frame, z the box's centre (`world.object_model_z`), yaw about z.
  One call per model (gz's `set_pose_vector` would move all at once, but ros_gz_bridge has no ROS type
  for it). Calls are asynchronous; while the service is not there (the bridge or Gazebo starting) the
  moves wait and the newest poses are sent once it is. They reach gz-sim after the period's clock, so
  its camera may show a bot car up to one period behind /objects (docs/races.md).
* `/objects` (geometry_msgs/PoseArray, frame odom = the track frame, stamped with the period's sim
  time): every object's pose, obstacles first, then bot cars (the contract of `sim_node`), so a client
  of the ROS backend judges collisions the same way with Gazebo as with the embedded simulator.
* `/initialpose` (the learner's reset, which gz_control turns into the car's set_pose): a new episode,
  as in `sim_node`: the bot cars back at their starts and, for a random layout, new obstacle poses
  (kept clear of the new pose), all sent to Gazebo.

    ros2 run deepracer_rl bot_cars_node --ros-args -p track:=reinvent_base -p race_type:=head_to_bot \
      -p use_sim_time:=true

Parameters: `track`, `world` (the Gazebo world's name; default the track's), `race_type`,
`world_config` and `seed`, as `gazebo.launch.py` gave them to the world generator; `timeout`: how long
(s) a set_pose answer may take before it is logged as missing. A race without obstacles or bot cars,
or a bad world config, ends the node with a one-line error (exit code 2).
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import rclpy
from geometry_msgs.msg import PoseArray, PoseWithCovarianceStamped
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rosgraph_msgs.msg import Clock

from ..car import CarSpec
from ..track import Track, TrackError
from ..world import object_model_names, object_model_z, physics_step
from ..world_objects import BOT_CAR, RACE_TYPES, ObjectWorld, race_objects_from
from . import contract

NODE_NAME = "bot_cars"

try:  # built into the venv by tools/build_interfaces.py; ros-jazzy-ros-gz-interfaces in a ROS install
    from ros_gz_interfaces.msg import Entity
    from ros_gz_interfaces.srv import SetEntityPose
except ImportError:  # pragma: no cover - reported by the node
    Entity = SetEntityPose = None


class BotCarsNode(Node):
    """One world's obstacles and bot cars (`ObjectWorld`) stepped on /clock, moved in Gazebo, published on /objects."""

    def __init__(self, **node_kwargs: Any) -> None:
        super().__init__(NODE_NAME, **node_kwargs)  # node_kwargs: e.g. parameter_overrides, context

        def declare(name: str, default: Any, description: str) -> Any:
            return self.declare_parameter(name, default, ParameterDescriptor(description=description)).value

        track_name = declare("track", "reinvent_base", "track name or path of a .npy route (the world's track)")
        world = declare("world", "", "Gazebo world name ('' = the track's name, as worlds/<track>*.sdf name it)")
        race_type = declare("race_type", "", "time_trial, object_avoidance or head_to_bot ('' = from the keys)")
        path = declare("world_config", "", "a YAML/JSON world config with DeepRacer's keys, as given to the world")
        seed = declare("seed", 0, "the seed the world variant was generated with (its object layout)")
        self.timeout = declare("timeout", 2.0, "seconds a set_pose answer may take before it is logged as missing")
        if SetEntityPose is None:
            raise ValueError(
                "ros_gz_interfaces is not importable: install ros-jazzy-ros-gz-interfaces (ROS) or build it "
                "into the venv (tools/build_interfaces.py)"
            )
        if race_type and race_type not in RACE_TYPES:
            raise ValueError(f"parameter 'race_type' must be one of {', '.join(RACE_TYPES)}, got {race_type!r}")
        if path and not Path(path).is_file():
            raise ValueError(f"parameter 'world_config': no such file {path!r}")
        if not self.timeout > 0:
            raise ValueError(f"parameter 'timeout' must be positive, got {self.timeout}")
        race = race_objects_from(
            race_type or None,
            path or None,
            {},
            label=lambda key: f"parameter {key.lower()!r}",
            options_name="the parameter race_type",
        )
        if race is None or not race.count:
            raise ValueError(
                "the race has no obstacles or bot cars (give race_type:=head_to_bot or object_avoidance, or a "
                "world_config with NUMBER_OF_BOT_CARS / NUMBER_OF_OBSTACLES): nothing to drive or publish"
            )
        track = Track.load(track_name)
        self.world_name = world or track.name
        self.objects = ObjectWorld(race, track, 1, seed=None if seed < 0 else seed)
        state = self.objects.state()
        self.names = object_model_names(state.kinds)
        self.model_z = object_model_z(state)
        self.bots = [k for k, kind in enumerate(state.kinds) if kind == BOT_CAR]
        step = physics_step(CarSpec.from_urdf().camera.rate_hz)
        self.period_ns = step.step_ns * step.steps_per_control  # one control period in gz-sim's integer ns
        self.ticks = 0  # control periods the world has been stepped (since the clock's zero)
        self.clock_ns: int | None = None
        self.unsent: set[int] = set()  # objects whose newest pose Gazebo has not been sent
        self.pending: dict[int, tuple[Any, float, str]] = {}  # id -> (future, sent at, model)
        self._next_id = 0
        self._last_log: dict[str, float] = {}

        self.client = self.create_client(SetEntityPose, contract.set_pose_service(self.world_name))
        self.objects_pub = self.create_publisher(PoseArray, contract.OBJECTS, contract.sensor_qos())
        self.create_subscription(Clock, contract.CLOCK, self._on_clock, contract.clock_qos())
        self.create_subscription(
            PoseWithCovarianceStamped, contract.INITIALPOSE, self._on_initialpose, contract.command_qos()
        )
        self.create_timer(0.5, self._check_pending)
        cfg = race
        parts = []
        if cfg.obstacle_count:
            parts.append(f"{cfg.obstacle_count} {cfg.obstacle_type}")
        if cfg.number_of_bot_cars:
            change = ", changing lanes" if cfg.is_lane_change else ""
            parts.append(f"{cfg.number_of_bot_cars} bot cars at {cfg.bot_car_speed:g} m/s{change}")
        self.get_logger().info(
            f"{track.name}: world '{self.world_name}', {' and '.join(parts)}; moved through "
            f"{contract.set_pose_service(self.world_name)} every {self.period_ns / 1e9:g} s of sim time, "
            f"poses on {contract.OBJECTS}"
        )

    # -- sim time ---------------------------------------------------------------------------
    def _on_clock(self, msg: Clock) -> None:
        """Step the world once per control period that the clock passed; move the bot cars; publish."""
        now = contract.stamp_ns(msg.clock)
        first = self.clock_ns is None
        if not first and now < self.ticks * self.period_ns:  # the clock went back: Gazebo's world was reset
            self.get_logger().info("the clock went back (a world reset): the objects start again")
            self.objects.reset([0])
            self.ticks = now // self.period_ns
            self.unsent.update(range(len(self.names)))
            first = True
        self.clock_ns = now
        due = now // self.period_ns
        if due > self.ticks:
            dt = self.period_ns / 1e9
            for _ in range(due - self.ticks):
                self.objects.step(dt)
            self.ticks = due
            self.unsent.update(self.bots)
        elif not first:
            return
        self._send()
        self._publish()

    def _on_initialpose(self, msg: PoseWithCovarianceStamped) -> None:
        """The learner's reset: a new episode, the layout kept clear of its new pose (as sim_node)."""
        p = msg.pose.pose
        pose = np.array([[p.position.x, p.position.y]])
        if not np.isfinite(pose).all():
            self._log("initialpose", f"ignoring a non-finite {contract.INITIALPOSE}")
            return
        arc = self.objects.track.project(pose).arc_length
        self.objects.reset([0], keep_clear=arc)
        self.unsent.update(range(len(self.names)))
        self._send()
        if self.clock_ns is not None:
            self._publish()

    # -- Gazebo and /objects ----------------------------------------------------------------
    def _send(self) -> None:
        """set_pose of every object not yet sent its newest pose (when the service is there)."""
        if not self.unsent:
            return
        if not self.client.service_is_ready():
            self._log(
                "service",
                f"waiting for {contract.set_pose_service(self.world_name)} (ros_gz_bridge and Gazebo): the "
                "objects move once it answers",
            )
            return
        poses = self.objects.state().poses[0]
        for k in sorted(self.unsent):
            x, y, yaw = (float(v) for v in poses[k])
            req = SetEntityPose.Request()
            req.entity.name = self.names[k]
            req.entity.type = Entity.MODEL
            req.pose.position.x, req.pose.position.y, req.pose.position.z = x, y, float(self.model_z[k])
            _, _, req.pose.orientation.z, req.pose.orientation.w = contract.quaternion_from_yaw(yaw)
            future = self.client.call_async(req)
            key = self._next_id
            self._next_id += 1
            self.pending[key] = (future, time.monotonic(), self.names[k])
            future.add_done_callback(lambda f, key=key: self._answered(key, f))
        self.unsent.clear()

    def _answered(self, key: int, future: Any) -> None:
        entry = self.pending.pop(key, None)
        name = entry[2] if entry else "?"
        result = future.result() if future.done() and not future.cancelled() else None
        if result is None or not result.success:
            self._log("failed", f"set_pose of '{name}' in world '{self.world_name}' failed (is the model there?)")

    def _check_pending(self) -> None:
        """Log set_pose calls unanswered after `timeout` (and forget them)."""
        now = time.monotonic()
        late = [key for key, (_, sent, _) in self.pending.items() if now - sent > self.timeout]
        for key in late:
            future, _, name = self.pending.pop(key)
            self.client.remove_pending_request(future)
        if late:
            self._log("late", f"{len(late)} set_pose call(s) unanswered after {self.timeout:g} s")

    def _publish(self) -> None:
        """/objects: every object's pose (obstacles first, then bot cars), stamped with the period's sim time."""
        state = self.objects.state()
        stamp = contract.time_msg(self.ticks * self.period_ns)
        self.objects_pub.publish(contract.objects_message(state.poses[0], state.z, stamp))

    def _log(self, kind: str, text: str) -> None:
        """A warning, at most one line a second of each kind."""
        now = time.monotonic()
        if now - self._last_log.get(kind, -math.inf) >= 1.0:
            self.get_logger().warning(text)
            self._last_log[kind] = now


def run(args: list[str] | None = None, overrides: dict | None = None) -> int:
    """Run the node until Ctrl-C or SIGTERM; `overrides` set parameters (name -> value). Returns the exit code."""
    stop_requested = contract.init_node_process(args)
    node = None
    code = 0
    try:
        node = BotCarsNode(parameter_overrides=[Parameter(k, value=v) for k, v in (overrides or {}).items()])
        executor = SingleThreadedExecutor(context=node.context)
        executor.add_node(node)
        while rclpy.ok() and not stop_requested.is_set():
            executor.spin_once(timeout_sec=0.1)
    except (ValueError, TrackError, FileNotFoundError) as exc:
        print(f"{NODE_NAME}: error: {exc}", file=sys.stderr)
        code = 2
    finally:
        if node is not None:
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    return code


def main(args: list[str] | None = None) -> None:
    code = run(args)
    if code:
        raise SystemExit(code)


if __name__ == "__main__":
    main()

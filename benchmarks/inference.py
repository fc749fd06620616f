"""Inference latency: camera image in -> /cmd_vel out over DDS at 640x480, and the pure model time,
with onnxruntime and with OpenVINO (the export's model.xml).

Run: python benchmarks/inference.py [--model EXPORT_DIR] [--frames 300] [--rate 15]
Starts `inference_node` in its own process pinned to one CPU (onnxruntime and OpenCV with
one thread), publishes rgb8 640x480 frames of reinvent_base at --rate Hz from this process
(pinned to another CPU when there is one, with the simulator's Fast DDS profile and QoS)
and times each frame from publish to the /cmd_vel it causes (one frame in flight at a time;
frames the transport drops, which the sensor-data QoS allows, are counted and left out of the
latency). Without --model it exports an untrained
PPO policy of the default training config (shallow network, 80x60 gray): the same graph and
cost as a trained one, exported with --format openvino. Model time is the runtime on one
preprocessed frame, one thread; preprocessing is `observation_from_image` from 640x480 RGB.
Each runtime is timed in turn (the node runs the export dir, then its model.xml); ends with one
JSON line holding both and the OpenVINO / onnxruntime ratios. Target: p99 < 10 ms.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # before NumPy loads its BLAS
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
os.environ.setdefault("ROS_DOMAIN_ID", str(40 + os.getpid() % 50))

import argparse  # noqa: E402
import json  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from deepracer_rl.camera import CameraRenderer  # noqa: E402
from deepracer_rl.car import CarSpec  # noqa: E402
from deepracer_rl.inference import load_policy  # noqa: E402
from deepracer_rl.observation import observation_from_image  # noqa: E402
from deepracer_rl.policy import OPENVINO_XML, ExportedPolicy  # noqa: E402
from deepracer_rl.track import Track  # noqa: E402

TARGET_P99_MS = 10.0


def untrained_export(out: Path) -> Path:
    """Export a freshly built PPO policy of the default training config."""
    from deepracer_rl.algorithms import build_model
    from deepracer_rl.config import TrainConfig
    from deepracer_rl.export import export_policy
    from deepracer_rl.train import make_env, prepare_run

    config = prepare_run(TrainConfig(n_envs=1, torch_threads=1), out / "run", resume=False)
    env = make_env(config, out / "run")
    model = build_model(config, env, out / "run")
    from deepracer_rl.action_space import ActionSpace

    actions = ActionSpace.load(out / "run" / "model_metadata.json")
    return export_policy(model, config.observation(), actions, out / "export", formats=("onnx", "openvino"))


def frames(n: int) -> list[np.ndarray]:
    track = Track.load("reinvent_base")
    camera = CarSpec.from_urdf().camera
    renderer = CameraRenderer(track, camera, camera.width, camera.height, grayscale=False)
    arcs = np.linspace(0.0, track.length, n, endpoint=False)
    points, headings = track.point_at(arcs)
    poses = np.column_stack([points, headings])
    return [renderer.render(pose[None])[0] for pose in poses]


def model_ms(policy: ExportedPolicy, images: list[np.ndarray], repeats: int) -> tuple[float, float]:
    """Median ms of (preprocessing one 640x480 frame, one network call)."""
    pre, net = [], []
    for i in range(repeats):
        image = images[i % len(images)]
        t0 = time.perf_counter()
        obs = observation_from_image(image, policy.observation)
        t1 = time.perf_counter()
        policy.outputs(obs[None])
        t2 = time.perf_counter()
        pre.append(t1 - t0)
        net.append(t2 - t1)
    return float(np.median(pre) * 1e3), float(np.median(net) * 1e3)


def dds_latencies(node, pub, model: Path, messages: list, args: argparse.Namespace, node_cpu: int) -> list[float]:
    """ms from publishing a frame to the /cmd_vel it causes, for an inference_node running `model`."""
    import rclpy
    from geometry_msgs.msg import Twist

    from deepracer_rl.ros import contract

    received: list[float] = []
    # Only driving commands answer a frame: a stop is the watchdog's (a frame lost in transport).
    sub = node.create_subscription(
        Twist, contract.CMD_VEL, lambda m: m.linear.x and received.append(time.perf_counter()), contract.command_qos()
    )
    node_proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "deepracer_rl.ros.inference_node",
            "--ros-args",
            "-p",
            f"model:={model}",
            "-p",
            "threads:=1",
            "--log-level",
            "warn",
        ],
        start_new_session=True,
        preexec_fn=None if args.no_pin else lambda: os.sched_setaffinity(0, {node_cpu}),
    )
    latencies = []
    try:
        deadline = time.monotonic() + 30
        while (
            pub.get_subscription_count() == 0 or node.count_publishers(contract.CMD_VEL) == 0
        ) and time.monotonic() < deadline:
            rclpy.spin_once(node, timeout_sec=0.05)
        if node_proc.poll() is not None or time.monotonic() >= deadline:
            raise SystemExit(f"inference_node did not come up with {model}")
        warmup = 15
        for i in range(args.frames + warmup):
            period_end = time.perf_counter() + 1.0 / args.rate
            before = len(received)
            sent = time.perf_counter()
            pub.publish(messages[i % len(messages)])
            while len(received) == before and time.perf_counter() < sent + 1.0:
                rclpy.spin_once(node, timeout_sec=0.001)
            if len(received) > before and i >= warmup:
                latencies.append((received[before] - sent) * 1e3)
            while time.perf_counter() < period_end:
                rclpy.spin_once(node, timeout_sec=max(0.0, period_end - time.perf_counter()))
    finally:
        os.killpg(node_proc.pid, signal.SIGINT)
        try:
            node_proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(node_proc.pid, signal.SIGKILL)
            node_proc.wait()
        node.destroy_subscription(sub)
        gone = time.monotonic() + 5  # the next node must not be mistaken for this one
        while (pub.get_subscription_count() > 0 or node.count_publishers(contract.CMD_VEL) > 0) and (
            time.monotonic() < gone
        ):
            rclpy.spin_once(node, timeout_sec=0.05)
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="export dir (default: an untrained export of the default config)")
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--rate", type=float, default=15.0)
    parser.add_argument("--no-pin", action="store_true", help="let the OS schedule the node on any CPU")
    args = parser.parse_args()

    cpus = sorted(os.sched_getaffinity(0))
    node_cpu, bench_cpu = cpus[0], cpus[-1]
    cv2.setNumThreads(1)
    tmp = tempfile.TemporaryDirectory(prefix="bench_inference_")
    model = Path(args.model) if args.model else untrained_export(Path(tmp.name))
    if not args.no_pin:
        os.sched_setaffinity(0, {bench_cpu})
    runtimes = {"onnxruntime": model}
    if (model / OPENVINO_XML).exists():
        runtimes["openvino"] = model / OPENVINO_XML
    else:
        print(f"no {model / OPENVINO_XML} (export --format openvino): onnxruntime only")
    policies = {name: load_policy(path, threads=1) for name, path in runtimes.items()}
    images = frames(60)
    times = {name: model_ms(policy, images, 300) for name, policy in policies.items()}

    from deepracer_rl.ros import contract

    contract.use_sim_node_fastdds_profile()  # this process writes the frames, as the simulator does
    import rclpy
    from sensor_msgs.msg import Image

    from deepracer_rl.ros.image import array_to_image

    rclpy.init()
    node = rclpy.create_node("inference_benchmark")
    pub = node.create_publisher(Image, contract.IMAGE, contract.sensor_qos())  # as sim_node publishes
    messages = [array_to_image(im, "rgb8") for im in images]
    latencies = {}
    try:
        for name, path in runtimes.items():
            latencies[name] = np.array(dds_latencies(node, pub, path, messages, args, node_cpu))
    finally:
        node.destroy_node()
        rclpy.shutdown()
        tmp.cleanup()

    policy = policies["onnxruntime"]
    print(
        f"inference on {policy.observation.width}x{policy.observation.height} "
        f"{'gray' if policy.observation.grayscale else 'RGB'} ({model})"
    )
    report: dict = {}
    for name, lat in latencies.items():
        pre_ms, net_ms = times[name]
        p50, p99 = (float(np.percentile(lat, q)) for q in (50, 99)) if len(lat) else (float("nan"),) * 2
        print(f"  {name}")
        print(f"    model        {net_ms:6.2f} ms per frame (1 thread)")
        print(f"    preprocess   {pre_ms:6.2f} ms per 640x480 RGB frame (observation_from_image)")
        print(
            f"    image->cmd   p50 {p50:6.2f} ms  p99 {p99:6.2f} ms  max "
            f"{lat.max() if len(lat) else float('nan'):6.2f} ms over DDS, {len(lat)}/{args.frames} frames answered, "
            + ("node not pinned" if args.no_pin else f"node pinned to CPU {node_cpu}")
        )
        verdict = "meets" if p99 < TARGET_P99_MS else "MISSES"
        print(f"    {verdict} the target p99 < {TARGET_P99_MS:g} ms")
        report[name] = {"p50_ms": round(p50, 3), "p99_ms": round(p99, 3), "model_ms": round(net_ms, 3)}
    if len(report) == 2:
        ov, ort = report["openvino"], report["onnxruntime"]
        report["openvino_vs_onnxruntime"] = {
            key: round(ov[key] / ort[key], 3) if ort[key] > 0 else None for key in ("model_ms", "p50_ms", "p99_ms")
        }
    print(json.dumps(report))


if __name__ == "__main__":
    main()

"""Camera rendering speed: 160x120 gray for a batch of cars, 640x480 RGB for one car, boxes.

Run: python benchmarks/render.py [--track reinvent_base] [--cars 16]
Prints milliseconds per batch (best of a few repeats, one OpenCV thread) and frames/s, then
the figures as one JSON line. The box cases render a pack of cars behind 4 car-sized boxes,
with and without the boxes, at 160x120 and 80x60 gray (and count the boxes each car sees).
Targets: 16 cars 160x120 gray <= 2 ms per batch; 640x480 RGB >= 100 fps; the GENERAL
randomisation preset at most about 2x the time of no randomisation (`cost_general`).
"""

from __future__ import annotations

import argparse
import json
import time

import cv2
import numpy as np

from deepracer_rl.camera import Box, CameraRenderer, DomainRandomization, car_box, ground_texture, randomization_preset
from deepracer_rl.car import CarSpec
from deepracer_rl.track import Track


def random_poses(track: Track, n: int, seed: int = 0) -> np.ndarray:
    """Poses spread along the track, off the centre line and not quite aligned with it."""
    rng = np.random.default_rng(seed)
    points, headings = track.point_at(rng.uniform(0, track.length, n))
    offset = rng.uniform(-0.3, 0.3, n) * track.width
    points = points + offset[:, None] * np.stack([-np.sin(headings), np.cos(headings)], axis=1)
    return np.column_stack([points, headings + rng.uniform(-0.3, 0.3, n)])


def pack_and_boxes(track: Track, n: int, seed: int = 0) -> tuple[np.ndarray, list[Box]]:
    """n car poses within 0.5 m along the start of the track, and 4 car-sized boxes 1.2-2.4 m ahead."""
    rng = np.random.default_rng(seed)
    points, headings = track.point_at(rng.uniform(0, 0.5, n))
    normals = np.stack([-np.sin(headings), np.cos(headings)], axis=1)
    points = points + rng.uniform(-0.2, 0.2, n)[:, None] * track.width * normals
    poses = np.column_stack([points, headings + rng.uniform(-0.1, 0.1, n)])
    ahead, heading = track.point_at(np.array([1.2, 1.6, 2.0, 2.4]))
    side = np.array([0.25, -0.25, 0.1, -0.1])[:, None] * np.stack([-np.sin(heading), np.cos(heading)], axis=1)
    colours = [(220, 40, 40), (40, 110, 230), (250, 160, 20), (170, 60, 200)]
    boxes = [car_box((x, y, h), c) for (x, y), h, c in zip(ahead + side, heading, colours)]
    return poses, boxes


def boxes_in_view(renderer: CameraRenderer, poses: np.ndarray, boxes: list[Box]) -> float:
    """Mean over cars of how many boxes, each drawn alone, change the car's frame."""
    plain = renderer.render(poses)
    seen = [np.any(renderer.render(poses, objects=[box]) != plain, axis=(1, 2)) for box in boxes]
    return float(np.sum(seen, axis=0).mean())


def seconds_per_call(fn, calls: int, repeats: int = 5) -> tuple[float, float]:
    """Best mean CPU and wall seconds over `repeats` runs of `calls` calls (after a warm-up).

    CPU time (this process) is the figure on one core; wall time also counts waiting for a
    core while other processes run.
    """
    fn()
    cpu = wall = float("inf")
    for _ in range(repeats):
        c0, w0 = time.process_time(), time.perf_counter()
        for _ in range(calls):
            fn()
        cpu = min(cpu, (time.process_time() - c0) / calls)
        wall = min(wall, (time.perf_counter() - w0) / calls)
    return cpu, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--track", default="reinvent_base")
    parser.add_argument("--cars", type=int, default=16)
    args = parser.parse_args()
    cv2.setNumThreads(1)

    track = Track.load(args.track)
    camera = CarSpec.from_urdf().camera
    start = time.perf_counter()
    texture = ground_texture(track)
    print(
        f"ground texture {track.name}: {texture.rgb.shape[1]}x{texture.rgb.shape[0]} texels "
        f"at {100 * texture.resolution:.1f} cm, built in {1e3 * (time.perf_counter() - start):.0f} ms"
    )

    poses = random_poses(track, args.cars)
    randomized = DomainRandomization(
        brightness=0.2,
        contrast=0.2,
        color=0.1,
        noise=4.0,
        blur=0.2,
        camera_height=0.01,
        camera_pitch=0.03,
        floor_texture=True,
    )
    cases = [
        (f"{args.cars} cars 160x120 gray", CameraRenderer(track, camera, 160, 120, True), poses, 300),
        (
            f"{args.cars} cars 160x120 gray, all randomisation on",
            CameraRenderer(track, camera, 160, 120, True, randomized, seed=0),
            poses,
            100,
        ),
        *[
            (
                f"{args.cars} cars 160x120 gray, {name.upper()} preset",
                CameraRenderer(track, camera, 160, 120, True, randomization_preset(name), seed=0),
                poses,
                100,
            )
            for name in ("standard", "general")
        ],
        (f"{args.cars} cars 160x120 RGB", CameraRenderer(track, camera, 160, 120, False), poses, 100),
        (
            f"1 car {camera.width}x{camera.height} RGB",
            CameraRenderer(track, camera, camera.width, camera.height, False),
            poses[:1],
            100,
        ),
    ]
    figures = {}
    keys = ["gray160", "gray160_randomized", "gray160_standard", "gray160_general", "rgb160", "rgb640_1car"]
    for key, (name, renderer, batch, calls) in zip(keys, cases):
        cpu, wall = seconds_per_call(lambda r=renderer, b=batch: r.render(b), calls)
        print(f"{name:<45} {1e3 * cpu:7.3f} ms/batch CPU ({1e3 * wall:.3f} wall)  {len(batch) / cpu:7.0f} frames/s")
        figures[f"fps_{key}"] = round(len(batch) / cpu)
    for name in ("standard", "general"):  # cost of a preset: frame time over the unrandomised one
        figures[f"cost_{name}"] = round(figures["fps_gray160"] / figures[f"fps_gray160_{name}"], 2)

    pack, boxes = pack_and_boxes(track, args.cars)
    for width, height in ((160, 120), (80, 60)):
        renderer = CameraRenderer(track, camera, width, height, True)
        seen = boxes_in_view(renderer, pack, boxes)
        rates = []
        for objects, label in ((None, "no boxes"), (boxes, f"{len(boxes)} boxes ({seen:.1f} seen)")):
            cpu, wall = seconds_per_call(lambda r=renderer, o=objects: r.render(pack, objects=o), 300)
            rates.append(len(pack) / cpu)
            name = f"{args.cars} cars {width}x{height} gray pack, {label}"
            print(f"{name:<45} {1e3 * cpu:7.3f} ms/batch CPU ({1e3 * wall:.3f} wall)  {rates[-1]:7.0f} frames/s")
        key = f"gray{width}_pack"
        figures[f"fps_{key}"], figures[f"fps_{key}_{len(boxes)}boxes"] = round(rates[0]), round(rates[1])
        figures[f"boxes_ratio_{width}"] = round(rates[1] / rates[0], 3)
        figures[f"boxes_in_view_{width}"] = round(seen, 2)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()

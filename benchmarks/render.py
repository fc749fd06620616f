"""Camera rendering speed: 160x120 gray for a batch of cars, 640x480 RGB for one car.

Run: python benchmarks/render.py [--track reinvent_base] [--cars 16]
Prints milliseconds per batch (best of a few repeats, one OpenCV thread) and frames/s.
Targets: 16 cars 160x120 gray <= 2 ms per batch; 640x480 RGB >= 100 fps.
"""

from __future__ import annotations

import argparse
import time

import cv2
import numpy as np

from deepracer_rl.camera import CameraRenderer, DomainRandomization, ground_texture
from deepracer_rl.car import CarSpec
from deepracer_rl.track import Track


def random_poses(track: Track, n: int, seed: int = 0) -> np.ndarray:
    """Poses spread along the track, off the centre line and not quite aligned with it."""
    rng = np.random.default_rng(seed)
    points, headings = track.point_at(rng.uniform(0, track.length, n))
    offset = rng.uniform(-0.3, 0.3, n) * track.width
    points = points + offset[:, None] * np.stack([-np.sin(headings), np.cos(headings)], axis=1)
    return np.column_stack([points, headings + rng.uniform(-0.3, 0.3, n)])


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
        (f"{args.cars} cars 160x120 RGB", CameraRenderer(track, camera, 160, 120, False), poses, 100),
        (
            f"1 car {camera.width}x{camera.height} RGB",
            CameraRenderer(track, camera, camera.width, camera.height, False),
            poses[:1],
            100,
        ),
    ]
    for name, renderer, batch, calls in cases:
        cpu, wall = seconds_per_call(lambda r=renderer, b=batch: r.render(b), calls)
        print(f"{name:<45} {1e3 * cpu:7.3f} ms/batch CPU ({1e3 * wall:.3f} wall)  {len(batch) / cpu:7.0f} frames/s")


if __name__ == "__main__":
    main()

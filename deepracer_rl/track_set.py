"""The tracks a run trains or validates on, and which way round they are driven.

`--track` takes, repeatably: a shipped world name, a `.npy` path, a glob over the shipped names
(`reInvent2019_*`) or over files (`maps/*.npy`), `@FILE` (a list file: one spec per line, `#`
comments), `all` (every shipped track) or `random:N[:SEED]` (N procedurally generated loops,
`procedural.py`, written into the run so it reproduces and resumes). `resolve_track_specs`
turns them into a list of track references (shipped names or file paths), `TrackSet` holds the
loaded tracks and draws each episode's track and direction from the race's seeded stream.
"""

from __future__ import annotations

import fnmatch
import glob
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .procedural import write_random_tracks
from .track import Track, TrackError, available_tracks

DIRECTIONS = ("as-is", "ccw", "cw", "both")  # as the file runs, counter-clockwise, clockwise, either (drawn)
_GLOB_CHARS = set("*?[")


class TrackSpecError(ValueError):
    """A `--track` or `--val-track` value names no track; the message names the value."""


def orientation(track: Track) -> str | None:
    """ "ccw" or "cw": which way the route's waypoints go round (shoelace area); None for an open route."""
    if not track.closed:
        return None
    x, y = track.waypoints[:, 0], track.waypoints[:, 1]
    area = float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y))
    return "ccw" if area > 0 else "cw"


def resolve_track_specs(
    specs: Sequence[str], seed: int = 0, generated_dir: str | Path | None = None, option: str = "--track"
) -> list[str]:
    """Track references (shipped names or `.npy` paths) of `specs`, in order, without repeats.

    `random:N[:SEED]` writes its tracks into `generated_dir` (required for it; SEED defaults to
    `seed`). Raises TrackSpecError naming the value that matches nothing.
    """
    out: list[str] = []
    for spec in specs:
        for ref in _resolve_one(str(spec).strip(), seed, generated_dir, option, depth=0):
            if ref not in out:
                out.append(ref)
    if not out:
        raise TrackSpecError(f"{option}: no tracks given")
    return out


def _resolve_one(spec: str, seed: int, generated_dir: str | Path | None, option: str, depth: int) -> list[str]:
    if not spec:
        raise TrackSpecError(f"{option} '': expected a track name, a .npy file, a glob, @FILE, all or random:N")
    names = available_tracks()
    if spec == "all":
        return names
    if spec.startswith("random:"):
        return [str(p) for p in _random(spec, seed, generated_dir, option)]
    if spec.startswith("@"):
        return _list_file(spec[1:], seed, generated_dir, option, depth)
    looks_like_path = spec.endswith(".npy") or "/" in spec
    if _GLOB_CHARS & set(spec):
        found = sorted(glob.glob(spec)) if looks_like_path else fnmatch.filter(names, spec)
        if not found:
            where = "no file matches it" if looks_like_path else f"no shipped track name matches it (of {len(names)})"
            raise TrackSpecError(f"{option} {spec}: {where}")
        return found
    if not looks_like_path and spec not in names:
        try:  # the same message (and near-miss hints) as everywhere a track name is read
            Track.load(spec)
        except TrackError as exc:
            raise TrackSpecError(f"{option} {spec}: {exc}") from None
    if looks_like_path and not Path(spec).is_file():
        raise TrackSpecError(f"{option} {spec}: no such track file (expected a DeepRacer .npy route)")
    return [spec]


def _random(spec: str, seed: int, generated_dir: str | Path | None, option: str) -> list[Path]:
    parts = spec.split(":")
    try:
        n = int(parts[1])
        draw_seed = int(parts[2]) if len(parts) > 2 else seed
        if len(parts) > 3 or not 1 <= n <= 1000:
            raise ValueError
    except (ValueError, IndexError):
        raise TrackSpecError(f"{option} {spec}: expected random:N or random:N:SEED with N in 1..1000") from None
    if generated_dir is None:
        raise TrackSpecError(f"{option} {spec}: random tracks are made for a training run (train --out)")
    return write_random_tracks(n, draw_seed, generated_dir)


def _list_file(path: str, seed: int, generated_dir: str | Path | None, option: str, depth: int) -> list[str]:
    if depth > 4:
        raise TrackSpecError(f"{option} @{path}: list files nest more than 4 deep")
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise TrackSpecError(f"{option} @{path}: cannot read the list file ({exc})") from None
    out: list[str] = []
    base = Path(path).parent
    for number, line in enumerate(lines, 1):
        entry = line.split("#", 1)[0].strip()
        if not entry:
            continue
        if (entry.endswith(".npy") or "/" in entry) and not Path(entry).is_absolute():
            entry = str(base / entry)  # paths in a list file are relative to it
        try:
            out += _resolve_one(entry, seed, generated_dir, option, depth + 1)
        except TrackSpecError as exc:
            raise TrackSpecError(f"{path}, line {number}: {exc}") from None
    if not out:
        raise TrackSpecError(f"{option} @{path}: the list file names no tracks")
    return out


@dataclass(frozen=True)
class TrackSet:
    """Loaded tracks and the direction rule; `draw` picks an episode's track and direction."""

    tracks: tuple[Track, ...]
    direction: str = "as-is"

    def __post_init__(self) -> None:
        if not self.tracks:
            raise ValueError("a TrackSet needs at least one track")
        if self.direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {', '.join(DIRECTIONS)}, got {self.direction!r}")

    @classmethod
    def load(cls, refs: Sequence[str | Track], direction: str = "as-is") -> TrackSet:
        """Tracks by name or path (TrackError names a broken file)."""
        return cls(tuple(r if isinstance(r, Track) else Track.load(r) for r in refs), direction)

    @property
    def varies(self) -> bool:
        """Whether episodes draw anything (more than one track, or a drawn direction)."""
        return len(self.tracks) > 1 or self.direction == "both"

    def reverse_for(self, index: int, rng: np.random.Generator | None = None) -> bool:
        """Whether track `index` is driven against its waypoints (drawn from `rng` for "both")."""
        track = self.tracks[index]
        if self.direction == "both":
            return bool(track.closed and rng is not None and rng.random() < 0.5)
        wanted = {"ccw": "ccw", "cw": "cw"}.get(self.direction)
        return wanted is not None and orientation(track) not in (None, wanted)

    def draw(self, rng: np.random.Generator) -> tuple[int, bool]:
        """An episode's track index and whether it is driven reversed."""
        index = int(rng.integers(len(self.tracks))) if len(self.tracks) > 1 else 0
        return index, self.reverse_for(index, rng)

"""A run's training and validation tracks: from `--track`/`--val-track` values to the files a run keeps.

A new run resolves its `--track` values (`track_set.resolve_track_specs`): generated tracks
(`random:N`) are drawn into a staging folder first and copied into the run's `tracks/` by
`keep_generated_tracks`, so the run reproduces and resumes without the generator. Without
`--val-track`, a run of 5 or more training tracks holds a seeded tenth of them (at least 2, at
most 8) out of training for validation (model selection predicts unseen tracks); a run of fewer
validates on its training tracks (at most 4 of them), as a one-track run always has.
Generated tracks are recorded relative to the run (`tracks/<name>.npy`); `track_paths` resolves them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
from pathlib import Path

import numpy as np

from .config import TrainConfig
from .policy import sha256
from .rundir import RunDir
from .track import Track, TrackError
from .track_set import TrackSet, TrackSpecError, resolve_track_specs

AUTO_VALIDATION_MIN_TRACKS = 5  # training sets this large give up a tenth of their tracks to validation
AUTO_VALIDATION_FRACTION = 0.1
AUTO_VALIDATION_RANGE = (2, 8)  # tracks held out
MAX_TRAINING_VALIDATION = 4  # training tracks validated on when none are held out


class TrackSetupError(ValueError):
    """The run's tracks cannot be resolved or loaded; the message names the value or file."""


def resolve_run_tracks(config: TrainConfig, staging: Path) -> tuple[TrainConfig, list[str]]:
    """The config with `tracks`, `track` and `val_tracks` resolved (generated tracks in `staging`),
    and notes for the user (what was held out). Every track is loaded once to check it."""
    config = dataclasses.replace(config)
    specs = config.track_specs or [config.track]
    try:
        train = resolve_track_specs(specs, config.seed, staging, "--track")
        val = (
            resolve_track_specs(config.val_track_specs, config.seed + 1, staging, "--val-track")
            if config.val_track_specs
            else []
        )
    except TrackSpecError as exc:
        raise TrackSetupError(str(exc)) from None
    notes = []
    if not val:
        if len(train) >= AUTO_VALIDATION_MIN_TRACKS:
            low, high = AUTO_VALIDATION_RANGE
            n = int(np.clip(round(AUTO_VALIDATION_FRACTION * len(train)), low, high))
            chosen = np.random.default_rng(config.seed).choice(len(train), size=n, replace=False)
            val = [train[i] for i in sorted(chosen.tolist())]
            train = [t for t in train if t not in val]
            notes.append(
                f"validation (model selection) on {n} tracks held out of training: {', '.join(_names(val))} "
                "(choose them with --val-track)"
            )
        else:
            val = train[:MAX_TRAINING_VALIDATION]
    overlap = [t for t in val if t in train]
    if overlap and len(train) > 1:
        notes.append(f"validation tracks also trained on (not unseen): {', '.join(_names(overlap))}")
    for ref in train + val:
        try:
            Track.load(ref)
        except TrackError as exc:
            raise TrackSetupError(str(exc)) from None
    config.track = train[0]
    config.tracks = train if len(train) > 1 else []
    config.val_tracks = val
    return config, notes


def keep_generated_tracks(config: TrainConfig, staging: Path, run: RunDir) -> TrainConfig:
    """Copy the staged generated tracks into the run's `tracks/` and refer to them there (run-relative)."""
    config = dataclasses.replace(config)
    staging = staging.resolve()

    def keep(ref: str) -> str:
        path = Path(ref)
        if path.parent.resolve() == staging:
            target = run.path / "tracks" / path.name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
            return f"tracks/{path.name}"
        return ref

    config.track = keep(config.track)
    config.tracks = [keep(t) for t in config.tracks]
    config.val_tracks = [keep(t) for t in config.val_tracks]
    return config


def track_path(ref: str, run: RunDir | None) -> str:
    """A track reference as `Track.load` takes it: run-relative `tracks/...` resolved in the run."""
    if run is not None and ref.startswith("tracks/"):
        return str(run.path / ref)
    return ref


def training_track_set(config: TrainConfig, run: RunDir | None) -> TrackSet | str:
    """What `RaceCore.create(track=...)` takes for the run's training tracks (one: its reference)."""
    refs = [track_path(r, run) for r in config.training_tracks]
    if len(refs) == 1 and config.direction == "as-is":
        return refs[0]
    return TrackSet.load(refs, config.direction)


def validation_tracks(config: TrainConfig, run: RunDir | None) -> list[str]:
    """The run's validation tracks as loadable references (old runs: the training track)."""
    return [track_path(r, run) for r in (config.val_tracks or [config.track])]


def tracks_sha256(config: TrainConfig, run: RunDir | None) -> str:
    """One SHA-256 over the files of every training and validation track, in order."""
    digest = hashlib.sha256()
    for ref in config.training_tracks + list(config.val_tracks):
        digest.update(sha256(Path(Track.load(track_path(ref, run)).source)).encode())
    return digest.hexdigest()


def _names(refs: list[str]) -> list[str]:
    return [Path(r).stem if r.endswith(".npy") else r for r in refs]

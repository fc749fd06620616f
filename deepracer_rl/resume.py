"""What a resumed run must keep: its input files by content hash, and its settings.

A run records the SHA-256 of the reward file, the track file and the metadata it started with
(`TrainConfig.input_sha256`). `--resume` compares them, and the settings given on the command
line, with the run's, and refuses with a diff: resuming silently with an edited reward or a
changed track would mix two trainings in one policy and one set of logs. `--force` continues
knowingly with changed files (the run's copies and hashes are updated, and the change is logged
in `resumes.log`); settings that shape the network or the rollout never change in a run.
"""

from __future__ import annotations

import dataclasses
import difflib
import shutil
import time
from pathlib import Path

from .action_space import ActionSpace
from .config import TrainConfig
from .policy import sha256
from .run_tracks import track_path, tracks_sha256
from .rundir import RunDir, RunError
from .track import Track

# Settings that may differ on every invocation: how long, where and how fast, not what is learned.
PER_INVOCATION = frozenset(
    {
        "steps",
        "max_minutes",
        "ros_timeout",
        "ros_domain_base",
        "external_simulators",
        "ray_address",
        "backend",
        "torch_threads",
        "reward_isolation",
        "reward_timeout",
        "reward_memory_mb",
        "simtrace",
        "camera_snapshot",
        "checkpoint_every",
        "eval_every",
        "eval_laps",
        "stop_when_lapping",
        "reward",
        "metadata",
        "track",  # these three are compared by content below
        "tracks",  # resolved from track_specs (compared as a setting), by content below
        "val_tracks",  # resolved from val_track_specs
        "sensors",
        "action_space_sha256",
        "input_sha256",  # derived from the files
        "randomization",  # derived from `randomize` when the run started
    }
)
# Of those, the ones a resumed run takes from this invocation when given (not left at the default):
# how often it checkpoints and evaluates, how many laps an evaluation drives, the learner's threads.
ADOPTED_WHEN_GIVEN = ("checkpoint_every", "eval_every", "eval_laps", "torch_threads", "stop_when_lapping")
DIFF_LINES = 30  # lines of a reward file's diff shown in the message


class ResumeMismatch(RunError):
    """The inputs given to --resume are not the run's; the message lists each difference."""


def track_file(name_or_path: str, run: RunDir | None = None) -> Path:
    """The `.npy` file behind a track name or path (as `Track.load` resolves it; `tracks/...` in the run)."""
    return Path(Track.load(track_path(name_or_path, run)).source)


def record_inputs(config: TrainConfig, run: RunDir) -> None:
    """Record the content hashes of the run's reward copy, track file and metadata copy in `config`
    (and of every training and validation track of a multi-track run)."""
    config.input_sha256 = {
        "reward": sha256(run.reward_path),
        "track": sha256(track_file(config.track, run)),
        "metadata": sha256(run.metadata_path),
    }
    if config.tracks or config.val_tracks:
        config.input_sha256["tracks"] = tracks_sha256(config, run)


def _reward_in_use(saved: TrainConfig, given: TrainConfig, run: RunDir) -> Path:
    """The reward file a resume would run: the one given, else the user's original while it exists
    (`train.race_kwargs`), else the run's copy."""
    if given.reward is not None:
        return Path(given.reward)
    if saved.reward and Path(saved.reward).exists():
        return Path(saved.reward)
    return run.reward_path


def _text_diff(old: Path, new: Path) -> str:
    try:
        a = old.read_text(encoding="utf-8").splitlines()
        b = new.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return ""
    lines = list(difflib.unified_diff(a, b, f"{old} (the run's)", str(new), lineterm="", n=1))
    if len(lines) > DIFF_LINES:
        lines = lines[:DIFF_LINES] + [f"... ({len(lines) - DIFF_LINES} more lines)"]
    return "\n".join("      " + line for line in lines)


def compare_for_resume(saved: TrainConfig, given: TrainConfig, run: RunDir, force: bool = False) -> TrainConfig:
    """The config to resume with; raises ResumeMismatch listing every difference between the run and
    what is given (files by content, settings by value). With `force`, changed files are adopted
    (copied into the run, hashes updated, logged); changed settings are refused all the same."""
    recorded = saved.input_sha256 or {}
    changed_files: list[str] = []
    settings: list[str] = []
    default = TrainConfig()

    reward = _reward_in_use(saved, given, run)
    if not reward.is_file():
        raise ResumeMismatch(f"{reward}: no such reward file")
    reward_sha = sha256(reward)
    reward_recorded = recorded.get("reward") or sha256(run.reward_path)
    if reward_sha != reward_recorded:
        diff = _text_diff(run.reward_path, reward)
        changed_files.append(f"reward: {reward} is not the reward the run trained with" + (f"\n{diff}" if diff else ""))

    track_name = given.track if given.track != default.track else saved.track
    try:
        track_sha = sha256(track_file(track_name, run))
        all_tracks_sha = tracks_sha256(saved, run) if "tracks" in recorded else None
    except (OSError, ValueError) as exc:
        raise ResumeMismatch(f"track {track_name!r}: {exc}") from None
    if track_name != saved.track:
        changed_files.append(f"track: the run trained on {saved.track!r}, not {track_name!r}")
    elif "track" in recorded and track_sha != recorded["track"]:
        changed_files.append(
            f"track: {track_file(track_name, run)} changed since the run started "
            f"(sha256 {recorded['track'][:12]} -> {track_sha[:12]})"
        )
    if all_tracks_sha is not None and all_tracks_sha != recorded["tracks"]:
        changed_files.append("tracks: a training or validation track file changed since the run started")

    metadata_problem = None
    try:
        run.load_actions(saved)
    except RunError as exc:
        metadata_problem = str(exc)
    if metadata_problem is None and given.metadata is not None:
        if ActionSpace.load(given.metadata).to_metadata() != ActionSpace.load(run.metadata_path).to_metadata():
            metadata_problem = f"{given.metadata} differs from the run's model_metadata.json"
    if metadata_problem is not None:  # the network's outputs are the actions: never adopted
        raise ResumeMismatch(f"{run.path}: a resumed run must keep its action space: {metadata_problem}")

    for field in dataclasses.fields(TrainConfig):
        name = field.name
        if name in PER_INVOCATION:
            continue
        value, before = getattr(given, name), getattr(saved, name)
        if value != getattr(default, name) and value != before:
            settings.append(f"--{name.replace('_', '-')}: the run has {before!r}, given {value!r}")

    if settings:
        raise ResumeMismatch(
            f"{run.path}: --resume keeps the run's settings; these differ:\n  "
            + "\n  ".join(settings)
            + "\n(start a new run to change them)"
            + ("\nand these inputs changed:\n  " + "\n  ".join(changed_files) if changed_files else "")
        )
    if changed_files and not force:
        raise ResumeMismatch(
            f"{run.path}: refusing to resume with changed inputs:\n  "
            + "\n  ".join(changed_files)
            + "\nrestore them, start a new run, or add --force to continue this run with them knowingly"
        )
    config = dataclasses.replace(saved)
    if changed_files:  # --force: the run's record follows what it trains on from now on
        if reward.resolve() != run.reward_path.resolve():
            shutil.copyfile(reward, run.reward_path)
        config.track = track_name
        config.input_sha256 = dict(recorded, reward=reward_sha, track=track_sha)
        if all_tracks_sha is not None:
            config.input_sha256["tracks"] = all_tracks_sha
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        with open(run.path / "resumes.log", "a", encoding="utf-8") as log:
            log.write(f"{stamp} resumed with --force after:\n  " + "\n  ".join(changed_files) + "\n")
    return config

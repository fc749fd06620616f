"""RaceEnv / RaceVecEnv: gymnasium API, baseline laps, statuses, actions, frames, determinism."""

from __future__ import annotations

import json
import math

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from track_sets import CLOSED_REPRESENTATIVE_TRACKS

import deepracer_rl  # noqa: F401  (registers deepracer_rl/Race-v0)
from deepracer_rl.action_space import ActionError, ActionSpace
from deepracer_rl.baseline import PurePursuitDriver
from deepracer_rl.camera import DomainRandomization
from deepracer_rl.env import ENV_ID, RaceEnv
from deepracer_rl.episode import RaceRules, StartRules
from deepracer_rl.observation import ObservationSpec
from deepracer_rl.track import Track, TrackError, available_tracks
from deepracer_rl.vec_env import RaceVecEnv

CLOSED_TRACKS = CLOSED_REPRESENTATIVE_TRACKS  # baseline laps take a second or two per track (track_sets.py)
CONTINUOUS = {
    "action_space_type": "continuous",
    "action_space": {"steering_angle": {"low": -30.0, "high": 30.0}, "speed": {"low": 0.1, "high": 4.0}},
}


@pytest.fixture(scope="module")
def reinvent() -> Track:
    return Track.load("reinvent_base")


@pytest.fixture(scope="module")
def continuous() -> ActionSpace:
    return ActionSpace.from_metadata(CONTINUOUS)


def to_action(space: ActionSpace, steer_deg: np.ndarray, speed: np.ndarray) -> np.ndarray:
    """Continuous policy action in [-1, 1]^2 for commands (the inverse of `to_commands`)."""
    (s_lo, s_hi), (v_lo, v_hi) = space.steering_range, space.speed_range
    return np.array(
        [2 * (steer_deg[0] - s_lo) / (s_hi - s_lo) - 1, 2 * (speed[0] - v_lo) / (v_hi - v_lo) - 1], dtype=np.float32
    )


# ---- gymnasium API ----------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:.*alternative render modes.*")  # needs an env spec; render is checked below
@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"model_metadata": "continuous"},
        {"observation": ObservationSpec(frame_stack=4)},
        {"observation": ObservationSpec(grayscale=False)},
        {"observation": ObservationSpec(width=84, height=84, grayscale=False, frame_stack=2)},
    ],
    ids=["discrete", "continuous", "stack4", "rgb", "rgb84-stack2"],
)
def test_check_env_passes(kwargs, reinvent, tmp_path):
    if kwargs.get("model_metadata") == "continuous":
        path = tmp_path / "model_metadata.json"
        path.write_text(json.dumps(CONTINUOUS))
        kwargs = {"model_metadata": path}
    env = RaceEnv(reinvent, render_mode="rgb_array", **kwargs)
    check_env(env, skip_render_check=False)
    obs, _ = env.reset(seed=0)
    assert obs in env.observation_space and obs.dtype == np.uint8
    frame = env.render()
    camera = env.core.car.camera
    assert frame.shape == (camera.height, camera.width, 3) and frame.dtype == np.uint8


def test_gymnasium_make_builds_the_env_by_id():
    env = gym.make(ENV_ID, track="Oval_track")
    assert ENV_ID == "deepracer_rl/Race-v0"
    assert env.unwrapped.core.track.name == "Oval_track"
    obs, info = env.reset(seed=1)
    assert obs.shape == (1, 120, 160) and info["episode_status"] == "in_progress"
    obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    assert math.isfinite(reward) and set(info) >= {"params", "episode_status", "progress"}
    env.close()


def test_unknown_track_points_to_the_known_ones():
    for make in (lambda: RaceEnv("reinvent_bsae"), lambda: gym.make(ENV_ID, track="reinvent_bsae")):
        with pytest.raises(TrackError) as info:
            make()
        message = str(info.value)
        assert "unknown track 'reinvent_bsae'" in message and "did you mean 'reinvent_base'" in message
        assert f"lists the {len(available_tracks())} shipped tracks" in message


def test_frame_stack_fills_with_the_first_frame_then_shifts(reinvent):
    env = RaceEnv(reinvent, observation=ObservationSpec(frame_stack=3))
    obs, _ = env.reset(seed=0)
    assert obs.shape == (3, 120, 160)
    assert np.array_equal(obs[0], obs[1]) and np.array_equal(obs[1], obs[2])
    nxt = env.step(5)[0]  # straight ahead at 0.5 m/s
    np.testing.assert_array_equal(nxt[:2], obs[1:])
    assert not np.array_equal(nxt[2], obs[2])  # the car moved, so its view changed


# ---- determinism ----------------------------------------------------------------------------


def rollout(seed: int, steps: int = 25) -> tuple[np.ndarray, list[float], np.ndarray]:
    env = RaceEnv(
        "reinvent_base",
        start=StartRules(lateral_noise=0.1, heading_noise=0.1),
        randomization=DomainRandomization(brightness=0.2, noise=3.0, camera_height=0.01),
    )
    obs, _ = env.reset(seed=seed)
    frames, rewards, poses = [obs], [], []
    actions = np.random.default_rng(0).integers(0, env.action_space.n, steps)
    for action in actions:
        obs, reward, terminated, truncated, _ = env.step(int(action))
        frames.append(obs)
        rewards.append(reward)
        poses.append(env.core.poses()[0].copy())
        if terminated or truncated:
            obs, _ = env.reset()
    return np.array(frames), rewards, np.array(poses)


def test_same_seed_gives_identical_observations_rewards_and_poses():
    a, b = rollout(seed=11), rollout(seed=11)
    np.testing.assert_array_equal(a[0], b[0])
    assert a[1] == b[1]
    np.testing.assert_array_equal(a[2], b[2])


def test_different_seeds_differ():
    a, b = rollout(seed=11, steps=3), rollout(seed=12, steps=3)
    assert not np.array_equal(a[2], b[2])
    assert not np.array_equal(a[0], b[0])


# ---- the baseline drives a lap through the env ---------------------------------------------------


@pytest.mark.parametrize("name", CLOSED_TRACKS)
def test_baseline_laps_every_closed_track_both_directions(name, continuous):
    env = RaceEnv(name, model_metadata=continuous, start=StartRules(alternate_direction=True))
    for reversed_ in (False, True):
        env.reset(seed=0) if not reversed_ else env.reset()
        assert bool(env.core.judge.reverse[0]) is reversed_
        driver = PurePursuitDriver(env.core)
        total = 0.0
        for _ in range(int(120 * env.core.control_hz)):
            obs, reward, terminated, truncated, info = env.step(to_action(continuous, *driver.act()))
            total += reward
            if terminated or truncated:
                break
        assert info["episode_status"] == "lap_complete", (name, reversed_, info["progress"])
        assert terminated and not truncated
        assert info["progress"] == 100.0 and info["params"]["is_reversed"] is reversed_
        assert math.isfinite(total) and total > 0


# ---- statuses through the env -----------------------------------------------------------------


def test_off_track_terminates(reinvent):
    env = RaceEnv(reinvent)
    env.reset(seed=0)
    sharp_left = int(np.flatnonzero(env.core.actions.actions[:, 0] == 30.0)[-1])
    for _ in range(300):
        _, _, terminated, truncated, info = env.step(sharp_left)
        if terminated or truncated:
            break
    assert info["episode_status"] == "off_track" and terminated and not truncated
    assert info["params"]["is_offtrack"] is True and info["params"]["all_wheels_on_track"] is False


def test_time_limit_truncates(reinvent):
    env = RaceEnv(reinvent, rules=RaceRules(max_seconds=1.0))
    env.reset(seed=0)
    straight = int(np.flatnonzero(env.core.actions.actions[:, 0] == 0.0)[0])
    results = [env.step(straight) for _ in range(15)]
    assert not any(r[2] or r[3] for r in results[:-1])
    _, _, terminated, truncated, info = results[-1]
    assert info["episode_status"] == "time_up" and truncated and not terminated


# ---- actions ----------------------------------------------------------------------------------


@pytest.mark.parametrize("action", [math.nan, math.inf, 10, -1, 2.5, np.array([1, 2]), "3", True])
def test_bad_discrete_actions_raise_action_error(action, reinvent):
    env = RaceEnv(reinvent)
    env.reset(seed=0)
    with pytest.raises(ActionError, match="action"):
        env.step(action)


def test_integral_discrete_actions_are_accepted(reinvent):
    env = RaceEnv(reinvent)
    env.reset(seed=0)
    for action in (3, np.int64(3), 3.0, np.array(3)):
        info = env.step(action)[4]
        assert (info["params"]["steering_angle"], info["params"]["speed"]) == tuple(env.core.actions.actions[3])


@pytest.mark.parametrize("action", [[math.nan, 0.0], [0.0, math.inf], [0.1, 0.2, 0.3], [], ["a", "b"]])
def test_bad_continuous_actions_raise_action_error(action, reinvent, continuous):
    env = RaceEnv(reinvent, model_metadata=continuous)
    env.reset(seed=0)
    with pytest.raises(ActionError):
        env.step(np.array(action, dtype=object) if action and isinstance(action[0], str) else action)


def test_continuous_actions_outside_the_box_are_clipped_to_its_ranges(reinvent, continuous):
    env = RaceEnv(reinvent, model_metadata=continuous)
    env.reset(seed=0)
    params = env.step(np.array([5.0, -7.0]))[4]["params"]
    assert (params["steering_angle"], params["speed"]) == (30.0, 0.1)  # high steering, low speed
    params = env.step(np.array([-1.0001, 1.5]))[4]["params"]
    assert (params["steering_angle"], params["speed"]) == (-30.0, 4.0)


# ---- frames -----------------------------------------------------------------------------------


def centre_dash_column(obs: np.ndarray) -> float:
    """Mean column (pixel i covers [i, i+1)) of the yellow centre dashes in an RGB observation.

    Yellowness (R - B) tells the dashes from the white border lines, which are in view too.
    """
    yellow = obs[0].astype(float) - obs[2]
    cols = np.nonzero(yellow > 60)[1]
    assert len(cols) > 20, "the centre dashes should be in view"
    return float(cols.mean() + 0.5)


def test_centre_line_is_at_the_image_centre_when_on_it_facing_along():
    env = RaceEnv("Straight_track", observation=ObservationSpec(grayscale=False))
    env.reset(seed=0)  # open track: the car starts on the centre line at its start, facing along
    track = env.core.track
    assert track.project(env.core.poses()[:, :2]).distance[0] < 1e-9
    assert centre_dash_column(env.core.stack[0]) == pytest.approx(80.0, abs=1.0)
    start = env.core.poses()[0].copy()

    def view(offset: float = 0.0, turn: float = 0.0) -> np.ndarray:
        """The env's next observation with the car moved `offset` m left / turned `turn` rad."""
        x, y, yaw = start
        env.core.backend.reset_cars([0], [(x - offset * math.sin(yaw), y + offset * math.cos(yaw), yaw + turn)], False)
        env.core.observe(np.array([0]))
        return env.core.stack[0]

    assert centre_dash_column(view()) == pytest.approx(80.0, abs=1.0)
    assert centre_dash_column(view(offset=0.1)) > 85  # car left of the line: line right of centre
    assert centre_dash_column(view(offset=-0.1)) < 75
    assert centre_dash_column(view(turn=0.1)) > 85  # car turned left: the line swings right
    assert centre_dash_column(view(turn=-0.1)) < 75


# ---- RaceVecEnv -------------------------------------------------------------------------------


def test_vec_env_auto_resets_with_the_terminal_observation(reinvent):
    env = RaceVecEnv(n_envs=4, track=reinvent, seed=0)
    obs = env.reset()
    assert obs.shape == (4, 1, 120, 160) and obs.dtype == np.uint8
    sharp_left = int(np.flatnonzero(env.core.actions.actions[:, 0] == 30.0)[-1])
    actions = np.full(4, sharp_left)
    for _ in range(300):
        obs, rewards, dones, infos = env.step(actions)
        assert rewards.dtype == np.float32 and dones.dtype == bool and len(infos) == 4
        if dones.any():
            break
    i = int(np.flatnonzero(dones)[0])
    assert infos[i]["episode_status"] == "off_track"
    terminal = infos[i]["terminal_observation"]
    assert terminal.shape == (1, 120, 160) and infos[i]["TimeLimit.truncated"] is False
    assert not np.array_equal(terminal, obs[i])  # obs[i] is already the next episode's first frame
    assert env.core.judge.steps[i] == 0 and env.core.episodes[i] == 2
    for j in np.flatnonzero(~dones):
        assert "terminal_observation" not in infos[j]


def test_vec_env_time_limit_marks_truncation(reinvent):
    env = RaceVecEnv(n_envs=2, track=reinvent, seed=0, rules=RaceRules(max_seconds=0.5))
    env.reset()
    straight = int(np.flatnonzero(env.core.actions.actions[:, 0] == 0.0)[0])
    for _ in range(8):
        _, _, dones, infos = env.step(np.full(2, straight))
    assert dones.all()
    assert all(info["episode_status"] == "time_up" and info["TimeLimit.truncated"] for info in infos)


def test_vec_env_seed_is_deterministic(reinvent):
    def run(seed: int) -> np.ndarray:
        env = RaceVecEnv(n_envs=3, track=reinvent, start=StartRules(lateral_noise=0.1))
        env.seed(seed)
        frames = [env.reset()]
        for action in np.random.default_rng(0).integers(0, 10, (10, 3)):
            frames.append(env.step(action)[0])
        return np.array(frames)

    np.testing.assert_array_equal(run(4), run(4))
    assert not np.array_equal(run(4), run(5))


def test_vec_env_rejects_a_wrong_number_of_actions(reinvent):
    env = RaceVecEnv(n_envs=3, track=reinvent, seed=0)
    env.reset()
    with pytest.raises(ActionError, match="expected 3 actions"):
        env.step(np.array([1, 2]))

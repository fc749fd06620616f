"""Gymnasium conventions: `make_vec` gives the batched simulator, the standard image wrappers work
through `ChannelLastObservation`, and standing still truncates (like the time limit)."""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from gymnasium.wrappers import GrayscaleObservation, ResizeObservation

import deepracer_rl  # noqa: F401  (registers deepracer_rl/Race-v0)
from deepracer_rl.env import ENV_ID, RaceEnv
from deepracer_rl.episode import RaceRules
from deepracer_rl.gym_vector import RaceVectorEnv
from deepracer_rl.observation import ObservationSpec
from deepracer_rl.vec_env import RaceVecEnv
from deepracer_rl.wrappers import ChannelLastObservation


def test_make_vec_gives_the_batched_simulator():
    envs = gym.make_vec(ENV_ID, num_envs=4, track="reinvent_base")
    try:
        assert isinstance(envs.unwrapped, RaceVectorEnv) and envs.num_envs == 4
        assert envs.unwrapped.core.n == 4  # one RaceCore, four cars: not four envs
        obs, infos = envs.reset(seed=3)
        assert obs.shape == (4, 1, 120, 160) and obs in envs.observation_space
        assert list(infos["episode_status"]) == ["in_progress"] * 4
        obs, rewards, terminated, truncated, infos = envs.step(envs.action_space.sample())
        assert obs.shape == (4, 1, 120, 160) and rewards.shape == terminated.shape == truncated.shape == (4,)
        assert infos["_params"].all() and infos["params"][0]["steps"] == 1
    finally:
        envs.close()


def test_the_vector_env_autoresets_in_the_same_step_like_the_sb3_vec_env():
    """Same seed and actions: the Gymnasium and SB3 batched envs give the same rewards, ends and frames."""
    gym_env = RaceVectorEnv(num_envs=3, seed=5)
    sb3_env = RaceVecEnv(n_envs=3, seed=5)
    obs_g, _ = gym_env.reset()
    obs_s = sb3_env.reset()
    np.testing.assert_array_equal(obs_g, obs_s)
    sharp_left = int(np.flatnonzero(gym_env.core.actions.actions[:, 0] == 30.0)[-1])
    ended = 0
    for _ in range(200):
        actions = np.full(3, sharp_left)
        obs_g, r_g, term, trunc, infos = gym_env.step(actions)
        obs_s, r_s, done, sb3_infos = sb3_env.step(actions)
        np.testing.assert_allclose(r_g, r_s, rtol=1e-6)
        np.testing.assert_array_equal(term | trunc, done)
        np.testing.assert_array_equal(obs_g, obs_s)  # after an end: the new episode's first frame
        for i in np.flatnonzero(done):
            assert infos["_final_obs"][i]
            np.testing.assert_array_equal(infos["final_obs"][i], sb3_infos[i]["terminal_observation"])
            assert infos["final_info"][i]["episode_status"] == "off_track"
            ended += 1
    assert ended >= 3
    gym_env.close()


def test_image_wrappers_work_through_channel_last_observation():
    env = ResizeObservation(ChannelLastObservation(RaceEnv()), (60, 80))
    obs, _ = env.reset(seed=0)
    assert obs.shape == (60, 80, 1) and obs in env.observation_space
    check_env(env, skip_render_check=True)
    rgb = GrayscaleObservation(ChannelLastObservation(RaceEnv(observation=ObservationSpec(grayscale=False))))
    gray, _ = rgb.reset(seed=0)
    assert gray.shape == (120, 160) and gray.dtype == np.uint8
    # The same picture as the env's own gray frame, to a few gray levels (both from the same scene).
    own, _ = RaceEnv().reset(seed=0)
    assert np.abs(gray.astype(int) - own[0]).mean() < 3.0


def test_channel_last_refuses_what_is_not_an_image():
    with pytest.raises(ValueError, match=r"needs \(C, H, W\) image observations"):
        ChannelLastObservation(gym.make("CartPole-v1"))


def test_standing_still_truncates_in_the_env_and_the_vec_env(tmp_path):
    """A crawl at 0.1 m/s moves less than the immobilisation distance within its window."""
    crawl = tmp_path / "model_metadata.json"
    crawl.write_text(json.dumps({"action_space": [{"steering_angle": 0.0, "speed": 0.1}]}))
    rules = RaceRules(immobilized_seconds=0.5)
    env = RaceEnv(model_metadata=crawl, rules=rules)
    env.reset(seed=0)
    for _ in range(50):
        _, _, terminated, truncated, info = env.step(0)
        if terminated or truncated:
            break
    assert info["episode_status"] == "immobilized"
    assert truncated and not terminated
    vec = RaceVecEnv(n_envs=2, seed=0, metadata=crawl, rules=rules)
    vec.reset()
    for _ in range(50):
        _, _, done, infos = vec.step(np.zeros(2, dtype=int))
        if done.all():
            break
    assert [i["episode_status"] for i in infos] == ["immobilized"] * 2
    assert all(i["TimeLimit.truncated"] is True for i in infos)


def test_going_off_track_terminates():
    env = RaceEnv()
    env.reset(seed=0)
    sharp_left = int(np.flatnonzero(env.core.actions.actions[:, 0] == 30.0)[-1])
    for _ in range(300):
        _, _, terminated, truncated, info = env.step(sharp_left)
        if terminated or truncated:
            break
    assert info["episode_status"] == "off_track" and terminated and not truncated


def test_reset_info_carries_the_params_like_step_info():
    """Gymnasium: reset's info is analogous to step's. Both envs give the start's DeepRacer params."""
    env = RaceEnv("reinvent_base")
    try:
        _, info = env.reset(seed=4)
        _, _, _, _, step_info = env.step(env.action_space.sample())
        assert set(info) == set(step_info) == {"params", "episode_status", "progress"}
        params = info["params"]
        assert set(params) == set(step_info["params"])
        assert info["episode_status"] == "in_progress" and info["progress"] == params["progress"] == 0.0
        assert params["steps"] == 0 and params["speed"] == 0.0 and params["track_length"] == env.core.track.length
        x, y, _ = env.core.judge.start_poses[0]
        assert (params["x"], params["y"]) == (pytest.approx(x), pytest.approx(y))
        assert params["all_wheels_on_track"] is True and params["is_offtrack"] is False
    finally:
        env.close()
    envs = RaceVectorEnv(num_envs=3, seed=2)
    try:
        _, infos = envs.reset(seed=2)
        _, _, _, _, step_infos = envs.step(envs.action_space.sample())
        assert set(infos) == set(step_infos) - {"final_obs", "_final_obs", "final_info", "_final_info"}
        assert infos["_params"].all() and list(infos["episode_status"]) == ["in_progress"] * 3
        starts = envs.core.judge.start_poses
        for i in range(3):
            assert infos["params"][i]["steps"] == 0 and infos["progress"][i] == 0.0
            assert infos["params"][i]["x"] == pytest.approx(starts[i][0])
        assert len({infos["params"][i]["closest_waypoints"][0] for i in range(3)}) == 3  # staggered starts
    finally:
        envs.close()

def reward_function(params):
    """Reward progress made per step, so faster laps earn more; nothing when off track."""
    if params["is_offtrack"] or not params["all_wheels_on_track"]:
        return 1e-3
    steps = params["steps"]
    progress = params["progress"]
    reward = progress / steps * 10.0
    if steps % 100 == 0 and progress > steps / 100 * 10:
        reward += 10.0  # bonus for keeping ahead of 10 % per 100 steps
    return float(reward)

def reward_function(params):
    """Example 1 of the DeepRacer developer guide: follow the centre line (the default)."""
    track_width = params["track_width"]
    distance_from_center = params["distance_from_center"]

    marker_1 = 0.1 * track_width
    marker_2 = 0.25 * track_width
    marker_3 = 0.5 * track_width

    if distance_from_center <= marker_1:
        reward = 1.0
    elif distance_from_center <= marker_2:
        reward = 0.5
    elif distance_from_center <= marker_3:
        reward = 0.1
    else:
        reward = 1e-3  # likely crashed / close to off track

    return float(reward)

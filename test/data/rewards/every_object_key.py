def reward_function(params):
    """Reads every objects_* key, closest_objects and object_in_camera (as a DeepRacer object-avoidance reward)."""
    reward = 1e-3
    if params["all_wheels_on_track"] and not params["is_crashed"]:
        reward = 1.0
    locations = params["objects_location"]
    distances = params["objects_distance"]
    lefts = params["objects_left_of_center"]
    speeds = params["objects_speed"]
    headings = params["objects_heading"]
    from_center = params["objects_distance_from_center"]
    behind, ahead = params["closest_objects"]
    assert len(locations) == len(distances) == len(lefts) == len(speeds) == len(headings) == len(from_center)
    if locations:
        x, y = locations[ahead]
        gap = ((x - params["x"]) ** 2 + (y - params["y"]) ** 2) ** 0.5
        same_lane = lefts[ahead] == params["is_left_of_center"]
        if same_lane and gap < 0.8:
            reward *= 0.2
        if params["object_in_camera"] and not same_lane:
            reward += 0.1
        reward += 0.01 * speeds[ahead] + 0.0 * headings[ahead] + 0.0 * from_center[ahead] + 0.0 * distances[behind]
    return float(reward)

"""Joining the Ray cluster a search runs on: connecting (or starting a private local Ray),
probing an address before Ray is asked to join it, reading what an autoscaling cluster can
grow to, counting trial slots, and checking that the experiment's storage is one every node can
reach."""

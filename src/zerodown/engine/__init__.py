"""The rollout engine: reconcile loop, strategies as pure planners, supervision of instances."""

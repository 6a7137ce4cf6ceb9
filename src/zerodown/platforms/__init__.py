"""Platforms: where instances run (local processes, Docker, Swarm, Kubernetes)."""

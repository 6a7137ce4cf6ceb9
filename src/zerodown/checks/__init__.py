"""Pre- and post-deployment checks, and health probes."""

"""Pre- and post-deployment checks against real servers."""

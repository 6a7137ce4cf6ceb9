"""Traffic routers: who gets which request (built-in proxy, HAProxy, Kubernetes)."""

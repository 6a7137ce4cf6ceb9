"""The built-in data plane: a weighted HTTP/1.1 reverse proxy run as its own process."""

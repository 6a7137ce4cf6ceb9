"""The controller's HTTP API."""

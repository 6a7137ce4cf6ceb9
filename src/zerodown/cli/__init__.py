"""The command-line interface: a client of the controller's API."""

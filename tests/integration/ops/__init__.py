"""Integration tests of the ops package on real sockets and processes."""

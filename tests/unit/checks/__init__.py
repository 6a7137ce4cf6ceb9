"""Unit tests of the checks package: health probes and the health state machine."""

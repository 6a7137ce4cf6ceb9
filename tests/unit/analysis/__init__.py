"""Unit tests of the analysis package: the shared types, the judges and their registry."""

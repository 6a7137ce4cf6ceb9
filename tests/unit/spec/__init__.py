"""Unit tests of the spec package: parsing, models, validation messages, defaults."""

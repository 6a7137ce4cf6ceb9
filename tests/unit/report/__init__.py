"""Unit tests of the Deployment Operations Report: Markdown, JSON twin, chart and files."""

"""The spec: `zerodown.yaml` parsed with line numbers and validated by pydantic models."""

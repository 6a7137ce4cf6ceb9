"""The monitor: samples metrics into time series, evaluates alert rules and routes notifications."""

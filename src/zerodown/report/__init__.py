"""The Deployment Operations Report, rendered from the store and measured metrics."""

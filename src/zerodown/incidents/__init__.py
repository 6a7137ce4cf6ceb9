"""Incidents: severity, lifecycle, impact and postmortems."""

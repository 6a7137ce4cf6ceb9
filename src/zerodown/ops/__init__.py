"""Day-2 operations: logs, monitor, alerts, incidents, backups, DR, autoscaling."""

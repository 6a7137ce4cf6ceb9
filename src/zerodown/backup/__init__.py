"""Backups with verified restores, retention and disaster-recovery drills."""

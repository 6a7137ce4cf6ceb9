"""The store: services, releases, events, instances and locks (SQLite or PostgreSQL)."""

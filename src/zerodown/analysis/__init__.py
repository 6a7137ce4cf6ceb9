"""Analysis: judges that turn measurements into pass / fail / inconclusive."""

"""Use cases: up, deploy, status, history, logs, stop ... the one API behind CLI and HTTP."""

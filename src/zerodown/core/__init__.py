"""Core: the pieces every layer may use and that use nothing of zerodown's own.

errors (the one error tree), clock (injected time), types (ids and small value types),
plugins (the registry that maps a name in YAML to an implementation).
"""

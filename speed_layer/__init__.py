"""The speed layer: the PyFlink job (spine 2)."""

"""Detection rules: the YAML format, its validation, and the default file."""

"""Detection rules: the YAML format (`parse`, with line numbers from `marks`), what it
means (`spec`), and the default file shipped with Vigil."""

"""The HTTP surface: thin handlers that parse, call a primitive and render."""

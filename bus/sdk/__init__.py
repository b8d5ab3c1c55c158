"""The Python client while it still lives in the server package (see sdk/python)."""

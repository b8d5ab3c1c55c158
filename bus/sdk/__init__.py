"""The Faust-agent decorator (bus.sdk.faust_agent), built on the Python client (sdk/python)."""

"""Wire models: everything that crosses HTTP or Kafka, as pydantic v2 models."""

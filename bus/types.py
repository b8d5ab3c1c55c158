"""The few aliases the rest of the bus builds on."""

from typing import Any, TypeAlias

__all__ = ["TopicId"]

TopicId: TypeAlias = str  # "namespace/tenant/name": how the bus names a topic
KafkaTopic: TypeAlias = str  # the real Kafka topic name a TopicId maps to
Partition: TypeAlias = int
Offset: TypeAlias = int
MessageId: TypeAlias = str
Headers: TypeAlias = dict[str, str]
JsonObject: TypeAlias = dict[str, Any]

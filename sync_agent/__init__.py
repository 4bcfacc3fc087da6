"""The sync agent: delivers the device outbox to central over MQTT and brings receipts and config back."""

from sync_agent.agent import SyncAgent, SyncStatus
from sync_agent.errors import BrokerUnreachable, SyncError

__all__ = ["BrokerUnreachable", "SyncAgent", "SyncError", "SyncStatus"]

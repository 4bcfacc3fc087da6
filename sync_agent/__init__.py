"""The sync agent: delivers the device outbox to central over MQTT and brings receipts and config back."""

from sync_agent.agent import SyncAgent
from sync_agent.errors import BrokerUnreachable, SyncError
from sync_agent.status import SyncStatus

__all__ = ["BrokerUnreachable", "SyncAgent", "SyncError", "SyncStatus"]

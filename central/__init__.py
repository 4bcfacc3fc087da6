"""The central service: ingest ratings from every device, store them once, raise, route and escalate alerts."""

from central.errors import CentralError, InvalidMessage
from central.ingest import IngestResult, parse_message
from central.service import CentralService
from central.store import CentralStore

__all__ = ["CentralError", "CentralService", "CentralStore", "IngestResult", "InvalidMessage", "parse_message"]

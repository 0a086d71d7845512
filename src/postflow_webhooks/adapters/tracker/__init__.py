"""PostFlow's upload tracker: its JSON file, or its live object when embedded."""

from postflow_webhooks.adapters.tracker.jsonfile import FILE_NAME, JsonTracker
from postflow_webhooks.adapters.tracker.postflow import PostflowTracker, UploadTracker

__all__ = ["FILE_NAME", "JsonTracker", "PostflowTracker", "UploadTracker"]

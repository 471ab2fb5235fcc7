"""The HubSpot adapter (product ``hubspot``) and its sandbox."""

from .adapter import HubSpotAdapter, plugin

__all__ = ["HubSpotAdapter", "plugin"]

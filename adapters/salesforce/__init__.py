"""The Salesforce adapter (products salesforce and salesforce_voice) and its sandbox."""

from .adapter import plugin

__all__ = ["plugin"]

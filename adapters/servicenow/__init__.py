"""ServiceNow adapter: ``sys_user`` and ``sys_user_has_role`` through pysnow."""

from .adapter import plugin

__all__ = ["plugin"]

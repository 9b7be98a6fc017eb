"""Calendars: CalDAV sync into vdir snapshots, and reading them."""

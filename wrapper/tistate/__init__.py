"""tistate: task-instance state transitions and asset events inside PostgreSQL."""

__version__ = "0.1.0"

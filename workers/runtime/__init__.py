"""The worker runtime: the Celery app and its thin tasks, beat and its tick, locks,
heartbeats, metrics and retry policy.
"""

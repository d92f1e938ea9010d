"""Scheduled maintenance: schedules from `.qwenfix.yml`, the scheduler tick, the tasks."""

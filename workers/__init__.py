"""Everything that does the work, and holds the secrets: the fix engine, the GitHub client,
the job handlers, the worker runtime, the command line.
"""

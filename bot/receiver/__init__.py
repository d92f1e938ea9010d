"""The webhook receiver: verify, decide, record and enqueue; it knows no model, sandbox or
forge.
"""

"""One module per job kind, each a handler of a JobContext built once per job, and the one
publish step they share.
"""

"""The operator dashboard: server-rendered pages on the receiver, behind the API token."""

"""The fake GitHub's HTTP routes, one module per area of GitHub's API.

Each handler is a plain FastAPI endpoint; the server's dispatch table (server.ROUTES) says
which method and path reaches it, in the order they are matched.
"""

"""The dashboard's pages and their API, read from the job store and the queues."""

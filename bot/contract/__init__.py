"""The job contract shared by the receiver and the workers: the job's models, kinds and
statuses, the store and its migrations, task and queue names, trajectory events, logging
context.
"""

"""The fix engine that `qwenfix fix PATH` needs: sandbox runs, the agent loop, the model
client, whole-repository context and the verdict; no Celery, database or GitHub.
"""

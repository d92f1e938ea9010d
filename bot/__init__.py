"""What `qwenfix serve` runs: the webhook receiver, the dashboard and the job contract they
share with the workers. Nothing here holds the App's private key or a token.
"""

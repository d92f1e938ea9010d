"""Pull-request reviews (issue "Pull requests": review on request)."""

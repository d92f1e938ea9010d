"""`qwenfix eval`: the fix engine on SWE-bench-format tasks, judged as SWE-bench does."""

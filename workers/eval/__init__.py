"""`qwenfix eval`: fix quality on SWE-bench-format task sets."""

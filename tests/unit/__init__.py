"""Fast tests: no Docker, Redis or network; in-process doubles from `tests.fakes`."""

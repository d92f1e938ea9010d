"""Where fixes are published: a local git repository now, GitHub through the same shape."""

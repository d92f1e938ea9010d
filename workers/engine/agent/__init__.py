"""The agent loop and its tools. Knows only the Model and Sandbox protocols."""

"""One widget per module; each takes its data as attributes and reports user actions as messages."""

"""Shared test set-up: tests/ on sys.path so test modules can import `helpers_hf`."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

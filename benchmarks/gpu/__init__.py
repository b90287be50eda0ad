"""The GPU check: data preparation, an offline bundle of Ray and pydantic, and `check.py` (README.md)."""

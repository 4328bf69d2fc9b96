"""CE-scaling control plane: cost-efficient, deadline-aware ML workflows on serverless functions."""

__version__ = "0.1.0"

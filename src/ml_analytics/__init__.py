"""ml-analytics-cloud: the multi-cloud storage layer of ml-analytics."""

__version__ = "0.1.0"

"""hoopflow: a Prefect 3 flow collection that runs an NBA analytics pipeline."""

__version__ = "0.1.0"

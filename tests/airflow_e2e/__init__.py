"""End-to-end tests against a real Airflow 3.3 (marker `airflow`): world.py, fixtures in conftest.

A package, and not named `airflow`: pytest puts tests/ on sys.path, where a `tests/airflow` package
would shadow Apache Airflow, and a conftest.py outside a package would replace the `conftest` module
that other test modules import from.
"""

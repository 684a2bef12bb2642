"""Orchestrator integrations: pipeline steps any scheduler can run (`steps`), and Airflow operators (`airflow`)."""

"""Grafana provisioning and the code that generates its dashboards (python -m grafana.generate)."""

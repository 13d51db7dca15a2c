"""Airflow-side package of the Payment Reconciliation Index System.

Operators, hooks, notifiers and the runtime profile mechanism live here; the DAG
files in ``dags/`` only ask this package for implementations. Keep top-level
imports light: DAG parsing imports this package.
"""

"""Development tools: never shipped to MWAA (plugins.zip) or EMR (the Spark image).

The workload generator, the local Kafka broker, the dashboard, the in-process DAG runner
and the local settings loader. They may import the production packages (``spark_apps``,
``payments_platform``, ``payments_contract``); nothing there imports them.
"""

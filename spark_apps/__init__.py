"""The PySpark data library of the Payment Reconciliation Index System.

Every transformation lives here once and is shared by the streaming and batch jobs
(DESIGN decision 1). Transformations are pure ``DataFrame -> DataFrame`` functions;
the modules in ``spark_apps.jobs`` only parse arguments, build the session, call
the library and write.
"""

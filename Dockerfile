# The EMR on EKS custom Spark image: the EMR release's own image plus the spark_apps
# package and the shared contract (payments_contract, standard library only), their Python
# dependencies and the JVM manifest's Spark jars. Built, tagged and pushed
# to the env's ECR repository <prefix>/spark (the PAYMENTS_SPARK_IMAGE_URI the jobs run) by
#   python scripts/release_image.py --image <PAYMENTS_SPARK_IMAGE_URI>
# (docs/infrastructure.md, release path). The base is the public EMR on EKS image (ECR Public
# Gallery: no login); its tag must match spark.release_label in include/profiles/*.yaml (tested).
ARG EMR_BASE_REGISTRY=public.ecr.aws/emr-on-eks

# The JVM side from the project's one manifest (jvm/pom.xml), resolved by the same script
# scripts/setup.sh runs locally: Spark's Kafka connector at the image's Spark version, MSK IAM
# auth and the project's stream operators (jvm/stream-ops). Maven verifies every checksum.
FROM maven:3.9.9-eclipse-temurin-17 AS jvm
WORKDIR /build
COPY jvm /build/jvm
COPY scripts/jvm_jars.sh /build/scripts/jvm_jars.sh
RUN bash scripts/jvm_jars.sh /opt/payments/jars spark

FROM ${EMR_BASE_REGISTRY}/spark/emr-spark-8.0.0:20260421

USER root
COPY requirements-spark.txt /tmp/requirements-spark.txt
RUN python3 -m pip install --no-cache-dir -r /tmp/requirements-spark.txt \
    && python3 -m pip install --no-cache-dir --no-deps soda-sparkdf==4.28.0 \
    && rm /tmp/requirements-spark.txt
# On the driver's and executors' classpath through the aws profile's spark.jars_dir.
COPY --from=jvm /opt/payments/jars/spark /opt/payments/jars/spark
# The jobs are command-line programs: the Airflow side passes every location and setting as an
# argument, so neither the Airflow-side package nor the runtime profiles are in the image.
COPY payments_contract /opt/payments/payments_contract
COPY spark_apps /opt/payments/spark_apps
COPY include/contracts /opt/payments/include/contracts
COPY include/config /opt/payments/include/config
ENV PYTHONPATH=/opt/payments \
    PAYMENTS_PROJECT_ROOT=/opt/payments

# EMR on EKS runs Spark as the hadoop user.
USER hadoop:hadoop

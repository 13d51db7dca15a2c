"""Kafka connection settings per profile security mode: ``plaintext`` (local) or ``iam`` (MSK IAM).

Two clients, one mode:

* Spark's own Kafka source and writer (``spark-sql-kafka-0-10``): :func:`spark_kafka_options`.
  MSK IAM is ``SASL_SSL`` + the ``AWS_MSK_IAM`` mechanism of ``aws-msk-iam-auth`` (a jar of
  the JVM manifest, in the EMR image): its login module and client callback handler sign
  with the pod's credentials (IRSA), so no token is handled here.
* confluent-kafka clients (the alert / dead-letter producer, the generator's producer):
  :func:`client_config`. MSK IAM is ``SASL_SSL`` + ``OAUTHBEARER`` with AWS's own token
  signer, ``aws-msk-iam-sasl-signer-python``, as the Airflow Kafka provider uses it.
"""

from __future__ import annotations

from typing import Any

SECURITY_MODES = ("plaintext", "iam")
IAM_LOGIN_MODULE = "software.amazon.msk.auth.iam.IAMLoginModule"
IAM_CALLBACK_HANDLER = "software.amazon.msk.auth.iam.IAMClientCallbackHandler"


def _check(security: str) -> None:
    if security not in SECURITY_MODES:
        raise ValueError(f"kafka security {security!r}: expected one of {', '.join(SECURITY_MODES)}")


def spark_kafka_options(bootstrap_servers: str, security: str = "plaintext") -> dict[str, str]:
    """The connection options of Spark's ``kafka`` source and sink (``kafka.``-prefixed consumer/producer settings)."""
    _check(security)
    options = {"kafka.bootstrap.servers": bootstrap_servers}
    if security == "iam":
        options.update(
            {
                "kafka.security.protocol": "SASL_SSL",
                "kafka.sasl.mechanism": "AWS_MSK_IAM",
                "kafka.sasl.jaas.config": f"{IAM_LOGIN_MODULE} required;",
                "kafka.sasl.client.callback.handler.class": IAM_CALLBACK_HANDLER,
            }
        )
    return options


def msk_iam_oauth_token(region: str) -> tuple[str, float]:
    """(token, expiry in epoch seconds) for confluent-kafka's ``oauth_cb``, from AWS's MSK IAM signer."""
    from aws_msk_iam_sasl_signer import MSKAuthTokenProvider

    token, expiry_ms = MSKAuthTokenProvider.generate_auth_token(region)
    return token, expiry_ms / 1000


def client_config(bootstrap_servers: str, security: str = "plaintext", region: str | None = None) -> dict[str, Any]:
    """The connection part of a confluent-kafka Producer/Consumer/AdminClient config."""
    _check(security)
    config: dict[str, Any] = {"bootstrap.servers": bootstrap_servers}
    if security == "iam":
        if not region:
            raise ValueError("kafka security 'iam' needs the AWS region")
        config.update(
            {
                "security.protocol": "SASL_SSL",
                "sasl.mechanisms": "OAUTHBEARER",
                "oauth_cb": lambda _config_str: msk_iam_oauth_token(region),
            }
        )
    return config

"""confluent-kafka client settings per profile security mode: ``plaintext`` (local) or ``iam`` (MSK).

MSK IAM auth is SASL/OAUTHBEARER whose token is a SigV4-presigned
``kafka-cluster:Connect`` request, the same token the AWS ``aws-msk-iam-sasl-signer``
library builds; it is produced here with botocore (already a dependency) so the
EMR image needs no extra package.
"""

from __future__ import annotations

import base64
import time
from typing import Any

SECURITY_MODES = ("plaintext", "iam")
_TOKEN_LIFETIME_S = 900
_USER_AGENT = "payments-stream-index"


def msk_iam_token(region: str) -> tuple[str, float]:
    """(token, expiry as epoch seconds) for MSK IAM auth, signed with the ambient AWS credentials."""
    import botocore.session
    from botocore.auth import SigV4QueryAuth
    from botocore.awsrequest import AWSRequest

    credentials = botocore.session.get_session().get_credentials()
    if credentials is None:
        raise RuntimeError("MSK IAM auth: no AWS credentials found (instance role, IRSA or environment)")
    url = f"https://kafka.{region}.amazonaws.com/?Action=kafka-cluster%3AConnect"
    request = AWSRequest(method="GET", url=url)
    SigV4QueryAuth(credentials.get_frozen_credentials(), "kafka-cluster", region, expires=_TOKEN_LIFETIME_S).add_auth(request)
    signed = f"{request.url}&User-Agent={_USER_AGENT}"
    token = base64.urlsafe_b64encode(signed.encode("utf-8")).decode("utf-8").rstrip("=")
    return token, time.time() + _TOKEN_LIFETIME_S


def client_config(bootstrap_servers: str, security: str = "plaintext", region: str | None = None) -> dict[str, Any]:
    """The connection part of a confluent-kafka Producer/Consumer/AdminClient config."""
    if security not in SECURITY_MODES:
        raise ValueError(f"kafka security {security!r}: expected one of {', '.join(SECURITY_MODES)}")
    config: dict[str, Any] = {"bootstrap.servers": bootstrap_servers}
    if security == "iam":
        if not region:
            raise ValueError("kafka security 'iam' needs the AWS region")
        config.update(
            {
                "security.protocol": "SASL_SSL",
                "sasl.mechanisms": "OAUTHBEARER",
                "oauth_cb": lambda _config_str: msk_iam_token(region),
            }
        )
    return config

"""Named defaults of ``kassa-relay`` (every CLI option's default is one of these)."""

from __future__ import annotations

DEFAULT_LISTEN_HOST = "0.0.0.0"
DEFAULT_PORT = 8443
DEFAULT_NATS_URL = "nats://127.0.0.1:4222"
DEFAULT_REPLICAS = 3
"""Replicas of the jobs stream and the buckets: 3 on a 3-node cluster (``--replicas 1`` for
a single test server)."""
DEFAULT_DUPLICATE_WINDOW_SECONDS = 24 * 3600
"""JetStream's ``Nats-Msg-Id`` de-duplication window. Beyond it a repeated check is still
answered from the results bucket, which the relay consults before publishing."""
DEFAULT_JOB_MAX_AGE_SECONDS = 14 * 24 * 3600
"""A check no kassa took in two weeks leaves the stream (its result stays ``wait``)."""
DEFAULT_RESULTS_TTL_SECONDS = 90 * 24 * 3600
DEFAULT_ACK_WAIT_SECONDS = 30.0
"""A kassa that took a check and did not ack it within this gets it again (de-duplicated
on the appliance by the job id)."""
DEFAULT_PUBLISH_TIMEOUT_SECONDS = 5.0
DEFAULT_MAX_BODY_BYTES = 256 * 1024
"""A Bitrix24 check of 100 positions is about 40 KB form-encoded."""
DEFAULT_MAX_FORM_FIELDS = 4000
DEFAULT_MAX_DEPTH = 6
"""Bitrix24's deepest key is ``items[0][supplier_info][phones][0]`` (4 brackets)."""
DEFAULT_RATE_PER_SECOND = 20.0
"""Requests per second per tenant and relay instance (a burst of ``DEFAULT_RATE_BURST``)."""
DEFAULT_RATE_BURST = 60
DEFAULT_TOKEN_TTL_SECONDS = 24 * 3600
"""ATOL Online tokens live 24 hours."""
DEFAULT_CALLBACK_TIMEOUT_SECONDS = 10.0

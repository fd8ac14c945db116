"""TLS for the MAX Bot API: always verified, against the system CAs **plus** the Russian
Trusted Root CA and Sub CA shipped with the package (``russian_trusted_ca.pem``).

``platform-api2.max.ru`` is certified by the Ministry's CA, which neither Debian's
``ca-certificates`` nor ``certifi`` carries (max-notes §1.2), so without it every request
fails with CERTIFICATE_VERIFY_FAILED. The context is the standard library's default one
(hostname check, CERT_REQUIRED, the platform's trust store) with the bundle added; there is
no switch to turn verification off.
"""

from __future__ import annotations

import ssl
from importlib import resources

CA_BUNDLE_NAME = "russian_trusted_ca.pem"


def ca_bundle_text() -> str:
    return (resources.files(__package__) / CA_BUNDLE_NAME).read_text(encoding="ascii")


def max_ssl_context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.load_verify_locations(cadata=_pem_only(ca_bundle_text()))
    return context


def _pem_only(text: str) -> str:
    """The certificates without the comment lines above them."""
    return text[text.index("-----BEGIN CERTIFICATE-----") :]

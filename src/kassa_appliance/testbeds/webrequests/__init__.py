"""A Web Requests server (Atol's HTTP API for DTO10) emulated on top of a register backend.

Used by tests and for manual runs (``kassa-appliance wr-emulator``) of the ``webrequests``
register backend without an Atol device or a Web Requests licence. Import from its modules
(``server``, ``faults``): the package itself loads nothing, so the CLI listing its command
stays light.
"""

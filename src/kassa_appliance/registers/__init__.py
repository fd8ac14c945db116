"""The register: the ``Register`` protocol and Atol's error categories (``base``), the
factory that builds the configured backend, and the backends themselves — Atol's
``libfptr10`` (``fptr10*``), Atol Web Requests (``webrequests``) and the simulator with its
paper tape (``simulator*``, ``tape``). Nothing here imports anything above it.
"""

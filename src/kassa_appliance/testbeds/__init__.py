"""Stand-ins for the outside world, for the demo and the tests — never used in production.

``bitrix24/`` is a protocol-faithful Bitrix24 portal (REST, OAuth) and push server,
``webrequests/`` an Atol Web Requests server on the simulated register, ``maxapi/`` the MAX
Bot API, and ``demo*`` the ``make demo`` stack and scripts. Only the CLI's ``demo``,
``emulator``, ``wr-emulator`` and ``max-emulator`` commands reach in here, and only when
they are run.
"""

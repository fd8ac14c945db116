"""Ways jobs arrive and replies leave other than the Bitrix24 outbox, one subpackage each.

``delivery`` (every reply target gets the outcome exactly once), ``conversation`` (the chat
that composes a receipt) with its transports ``b24bot`` (imbot.v2) and ``maxbot`` (MAX),
``automation`` (CRM offline events → receipts), ``lan`` (Atol Web Requests / KKMServer
compatible HTTP) and ``relay`` (the JetStream consumer of kassa-relay). Built on the fiscal
core's journal and the Bitrix24 link's REST client, never on ``appliance`` (the daemon wires
channels in, ``appliance/channels.py``, not the other way round); one channel uses another
only through ``delivery.protocol`` (and the bots through ``conversation``).
"""

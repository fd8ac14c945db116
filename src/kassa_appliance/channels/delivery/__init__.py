"""Reply delivery: each reply target of a job gets the job's outcome exactly once.

A job's REPLY names its targets (a Bitrix24 chat dialog, a MAX chat, a CRM entity's
timeline, a ``sale.cashbox`` check, the relay's results bucket, the Bitrix24 outbox record).
The ledger of deliveries lives in the journal; the worker sends each one with the sender of
its kind, retrying with back-off, and after a crash looks before sending again
(:class:`~kassa_appliance.channels.delivery.protocol.Sender`).
"""

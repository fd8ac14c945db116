"""The fiscal core: everything that decides "printed exactly once".

Receipt models and their rules (``receipt*``), the job journal (``journal``), the engine
that works it in arrival order (``engine*``) and the thread discipline it drives the register
with (``caller``). Nothing here knows about Bitrix24, snapd or USB: it imports only the
``Register`` protocol (``registers.base``) and the shared helpers at the package's top.
"""

"""The appliance on its device: configuration, daemon wiring, systemd/snapd integration.

``config`` composes every part's settings into the one ``Config`` the daemon, the CLI and the
snap hooks use; ``daemon`` wires journal, register, engine and the Bitrix24 link into one
process; ``runtime``, ``watchdog`` and ``devices`` are sd_notify, snap health and USB hotplug;
``hooks/`` is the logic of the snap's install, configure and post-refresh hooks.
"""

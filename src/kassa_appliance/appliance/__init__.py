"""The appliance on its device: configuration, daemon wiring, systemd/snapd integration.

``config`` composes every part's settings into the one ``Config`` the daemon, the CLI and the
snap hooks use; ``daemon`` wires journal, register, engine and the Bitrix24 link into one
process, holding ``engine_lock`` and writing ``status_file``; ``sd_notify``, ``liveness``,
``health`` and ``watchdog`` speak to systemd and snapd; ``runtime`` and ``devices`` handle USB
hotplug; ``hooks/`` is the logic of the snap's install, configure and post-refresh hooks;
``cli_jobs`` and ``job_display`` are the bodies of the CLI's job commands.
"""

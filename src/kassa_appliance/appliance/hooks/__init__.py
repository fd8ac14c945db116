"""Logic of the snap hooks (``hooks/`` holds thin shell wrappers that run
``python3 -m kassa_appliance.appliance.hooks <hook>``), kept here so it can be tested off a
device."""

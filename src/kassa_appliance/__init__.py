"""Kassa Appliance: a Bitrix24-driven cloud cash register on an Atol fiscal register."""

__version__ = "0.1.0"

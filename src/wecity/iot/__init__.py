"""Devices and their readings: provisioning, and MQTT ingestion into the context broker."""

"""The NGSI-LD context broker: city entities, their history, queries and subscriptions."""

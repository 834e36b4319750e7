"""Notifications delivered through the outbox: webhook (SMS and WeChat gateways too), e-mail, in-app."""

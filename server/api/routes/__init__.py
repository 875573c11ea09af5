"""Thin routers: each validates its body, calls one service, and returns."""

"""Invoicing: follows the order feed and keeps one invoice per order."""
